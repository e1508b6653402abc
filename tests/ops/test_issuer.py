"""The issuer names the server actually listening (issue 9, item 1).

``gateway serve --port N`` without GATEWAY_ISSUER used to publish metadata and sign tokens for
``http://127.0.0.1:8000`` whatever port it listened on, so a client following the metadata
went to the wrong server. In production the issuer (and the metrics token) must be explicit:
the server refuses to start, with a message naming the setting, and exits 2."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

from tests.ops.test_serve import call
from tests.support import harness, process

BASIC_GROCERY = "Basic Z3JvY2VyeS1kZW1vOmdyb2NlcnktZGVtby1zZWNyZXQ="  # grocery-demo


def claims(jwt: str) -> dict[str, Any]:
    payload = jwt.split(".")[1]
    padded = payload + "=" * (-len(payload) % 4)
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(padded))
    return decoded


def test_metadata_and_tokens_name_the_listening_server(tmp_path: Path) -> None:
    env = {"DATABASE_URL": harness.database_url(tmp_path)}
    with process.running(env, ["--demo"], log_path=tmp_path / "server.log") as server:
        assert not server.base_url.endswith(":8000")
        status, _, body = call(server.base_url, "/.well-known/oauth-authorization-server")
        assert status == 200, body
        metadata = json.loads(body)
        assert metadata["issuer"] == server.base_url
        assert metadata["token_endpoint"] == f"{server.base_url}/oauth/token"
        status, _, body = call(server.base_url, "/oauth/token", b"grant_type=client_credentials",
                               {"Authorization": BASIC_GROCERY,
                                "Content-Type": "application/x-www-form-urlencoded"})
        assert status == 200, body
        assert claims(json.loads(body)["access_token"])["iss"] == server.base_url
        assert f"Issuer:        {server.base_url}\n" in server.output()


def refused(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {"DATABASE_URL": harness.database_url(tmp_path), "GATEWAY_ENV": "production", **env}
    return subprocess.run([process.PYTHON, *process.GATEWAY_SERVE, "--port", "8123"],
                          cwd=process.ROOT, env=process.server_env(env), capture_output=True,
                          text=True, timeout=60)


def test_production_without_an_issuer_refuses_to_start(tmp_path: Path) -> None:
    result = refused({"GATEWAY_METRICS_TOKEN": "m-token"}, tmp_path)
    assert result.returncode == 2
    assert result.stderr == ("error: refusing to start: GATEWAY_ISSUER must be set in production "
                             "(the public URL of this gateway, e.g. https://gateway.example.com)\n")
    assert result.stdout == ""


def test_production_without_a_metrics_token_refuses_to_start(tmp_path: Path) -> None:
    result = refused({"GATEWAY_ISSUER": "https://gw.example.com"}, tmp_path)
    assert result.returncode == 2
    assert result.stderr == ("error: refusing to start: GATEWAY_METRICS_TOKEN must be set in "
                             "production (GET /metrics then needs 'Authorization: Bearer "
                             "<token>')\n")
