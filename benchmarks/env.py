"""What a run uses: its sizes (full or ``--quick``), the backend, fresh databases on it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from benchmarks import serve
from tests.support import servers


@dataclass(frozen=True)
class Plan:
    seconds: float = 10  # per measured wrk run (each preceded by a short warm-up)
    warmup_seconds: float = 2  # 0: no warm-up run
    connections: int = 16  # earn and balance runs; the redeem runs use 100
    members: int = 10_000  # pre-enrolled customers the load is spread over
    transfers: int = 1_000_000  # stored for the balance benchmark
    workers: int = 2  # server processes for the gateway and the bare app alike
    scale_small: int = 10_000  # members (and operations) of the scale benchmark's baseline
    scale_big: int = 1_000_000  # members (and operations) it is compared at
    # earn and the reads send a registered document's id (docs/trusted-documents.md), not text
    trusted_documents: bool = False
    report_operations: int = 10_000_000  # the programme report's operations (issue 13)
    campaign_rounds: int = 4  # the campaigns benchmark's alternating paired rounds

    @staticmethod
    def quick() -> Plan:
        return Plan(seconds=1, warmup_seconds=0, connections=8, members=200,
                    transfers=5_000, workers=1, scale_small=200, scale_big=2_000,
                    report_operations=20_000, campaign_rounds=2)


@dataclass
class Backend:
    """One backend for a run: ``sqlite`` (files in ``workdir``) or ``postgresql`` (a durable
    throwaway server, plus Redis for limits, revocations and locks)."""

    name: str
    workdir: Path
    postgres: servers.PostgresServer | None = None
    redis: servers.RedisServer | None = None
    _count: int = 0
    _engines: list[Engine] = field(default_factory=list)

    @classmethod
    def start(cls, name: str, workdir: Path) -> Backend:
        backend = cls(name, workdir)
        if name == "postgresql":
            backend.postgres = serve.start_postgres()
            backend.redis = serve.start_redis()
        return backend

    @property
    def redis_url(self) -> str | None:
        return self.redis.url if self.redis else None

    @property
    def label(self) -> str:
        return "postgresql+redis" if self.redis else self.name

    def fresh_database(self, name: str) -> str:
        self._count += 1
        if self.postgres is None:
            return f"sqlite:///{self.workdir / f'{name}-{self._count}.db'}"
        return self.postgres.url(self.postgres.create_database())

    def stop(self) -> None:
        for server in (self.redis, self.postgres):
            if server is not None:
                server.stop()
