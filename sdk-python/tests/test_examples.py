"""Every example runs against the server the README's first command starts (examples/policies.yaml
on the memory store), and the direct-door one against a real Redis."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from .conftest import ROOT, StartServer

EXAMPLES = ROOT / "sdk-python" / "examples"


@pytest.mark.parametrize("name", ["service_door.py", "async_door.py", "llm_budget.py", "admission.py"])
def test_example_runs(name: str, start_server: StartServer) -> None:
    srv = start_server((ROOT / "examples" / "policies.yaml").read_text())
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        env={**os.environ, "THROTTLEKIT_TARGET": srv.addr},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip(), "the example printed nothing"


def test_direct_redis_example(redis_url: str) -> None:
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / "direct_redis.py")],
        env={**os.environ, "REDIS_URL": redis_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "allowed=True" in out.stdout and "key=prod:alice" in out.stdout


def test_fastapi_example(start_server: StartServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient

    srv = start_server((ROOT / "examples" / "policies.yaml").read_text())
    monkeypatch.setenv("THROTTLEKIT_TARGET", srv.addr)
    monkeypatch.syspath_prepend(str(EXAMPLES))
    sys.modules.pop("fastapi_app", None)
    import fastapi_app

    client = TestClient(fastapi_app.app)
    codes = [client.get("/items").status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]
    denied = client.get("/items")
    assert denied.headers["Retry-After"] and denied.headers["RateLimit-Remaining"] == "0"
    fastapi_app.backend.close()
    assert pathlib.Path(fastapi_app.__file__).parent == EXAMPLES
