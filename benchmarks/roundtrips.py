"""Count what one ``earnPoints`` costs on PostgreSQL + Redis in messages, not seconds: the
statements the server receives (each one round trip with psycopg outside pipeline mode, BEGIN
and COMMIT included) and the Redis commands, per earn, averaged over N sequential earns.

    .venv/bin/python -m benchmarks.roundtrips [--earns 200]

PostgreSQL logs every statement (``log_statement = all``, set with ``ALTER SYSTEM`` and a reload
once the server is warm, so start-up and the token request are not counted); Redis counts its
commands (``INFO commandstats`` after ``CONFIG RESETSTAT``). Both servers are throwaway ones
(tests/support/servers.py); the gateway is a real ``gateway serve`` process with one worker.
Figures: docs/benchmarks.md, "Serving stack, reads and PostgreSQL round trips"."""

from __future__ import annotations

import argparse
import collections
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import redis

from benchmarks import earn, seed, serve
from tests.support import servers

WARM_EARNS = 20


def _earn(client: httpx.Client, url: str, token: str, customer: int) -> None:
    key = uuid.uuid4().hex
    body = earn.BODY.replace("@CUSTOMER@", f"c{customer}").replace("@KEY@", key)
    answer = client.post(f"{url}/graphql", content=body, timeout=30,
                         headers={"Authorization": f"Bearer {token}",
                                  "Content-Type": "application/json"})
    if "EarnPointsSuccess" not in answer.text:
        raise RuntimeError(f"earn failed: {answer.text[:300]}")


def _entries(text: str) -> list[str]:
    """Log entries: a statement spanning lines continues on lines that start with a tab."""
    entries: list[str] = []
    for line in text.splitlines():
        if line.startswith("\t") and entries:
            entries[-1] += " " + line.strip()
        else:
            entries.append(line)
    return entries


def _monitored(url: str, action: Callable[[], None]) -> list[str]:
    """The Redis commands ``action`` causes, from ``MONITOR`` (its own connection)."""
    seen: list[str] = []
    done = threading.Event()
    client = redis.Redis.from_url(url)

    def watch() -> None:
        with client.monitor() as monitor:
            ready.set()
            for item in monitor.listen():
                command = item["command"]
                if command.startswith("ECHO end-of-earn"):
                    break
                seen.append(command[:120])
        done.set()

    ready = threading.Event()
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    ready.wait(5)
    time.sleep(0.2)
    action()
    client.echo("end-of-earn")
    done.wait(10)
    client.close()
    return seen


def _kind(statement: str) -> str:
    words = statement.split()
    head = words[0].upper() if words else "?"
    if "pg_advisory" in statement:
        return "advisory lock"
    if head in ("INSERT", "UPDATE", "DELETE"):
        table = re.search(r"(?i)(?:into|update|from)\s+(\w+)", statement)
        return f"{head} {table.group(1) if table else '?'}"
    if head == "SELECT":
        table = re.search(r"(?i)\bfrom\s+(\w+)", statement)
        return f"SELECT {table.group(1) if table else '(no table)'}"
    return head


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--earns", type=int, default=200)
    args = parser.parse_args()
    postgres = servers.PostgresServer(durable=True).start()
    cache = servers.RedisServer().start()
    workdir = Path(tempfile.mkdtemp(prefix="bench-roundtrips-"))
    try:
        name = postgres.create_database()
        url = postgres.url(name)
        engine = seed.prepare(url).services.engine
        seed.enrol(engine, args.earns, "c")
        engine.dispose()
        with serve.gateway(url, workdir, workers=1, redis_url=cache.url) as server, \
                httpx.Client() as client:
            token = serve.token(server.base_url)
            for n in range(WARM_EARNS):
                _earn(client, server.base_url, token, n)
            log = postgres.root / "log"
            postgres.admin("ALTER SYSTEM SET log_statement = 'all'")
            postgres.admin("ALTER SYSTEM SET log_line_prefix = '%d|'")
            postgres.admin("SELECT pg_reload_conf()")
            r = redis.Redis.from_url(cache.url)
            r.config_resetstat()
            offset = log.stat().st_size
            for n in range(args.earns - 1):
                _earn(client, server.base_url, token, n)
            last_earn = _monitored(cache.url, lambda: _earn(client, server.base_url, token,
                                                             args.earns - 1))
            commands = {k.removeprefix("cmdstat_"): int(v["calls"])
                        for k, v in r.info("commandstats").items()}
            r.close()
            postgres.admin("ALTER SYSTEM RESET ALL")
            postgres.admin("SELECT pg_reload_conf()")
        with log.open(errors="replace") as f:
            f.seek(offset)
            entries = _entries(f.read())
        logged = [m.group(1) for entry in entries if entry.startswith(f"{name}|")
                  and (m := re.search(r"LOG:  (?:statement|execute [^:]*): (.*)", entry, re.S))]
        statements = collections.Counter(_kind(statement) for statement in logged)
        commands.pop("info", None)
        commands.pop("config|resetstat", None)
        n = args.earns
        print(f"per earnPoints, averaged over {n} sequential earns (PostgreSQL durable, 1 worker)")
        print("PostgreSQL statements (pipelined: not one round trip each): "
              f"{sum(statements.values()) / n:.2f}")
        for kind, count in statements.most_common():
            print(f"  {count / n:6.2f}  {kind}")
        print(f"Redis commands: {sum(commands.values()) / n:.2f}")
        for command, count in sorted(commands.items(), key=lambda kv: -kv[1]):
            print(f"  {count / n:6.2f}  {command}")
        print("Redis commands of the last earn, in order:")
        for line in last_earn:
            print(f"  {line}")
    finally:
        cache.stop()
        postgres.stop()


if __name__ == "__main__":
    main()
