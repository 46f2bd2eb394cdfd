"""Traces: read and written as the server reads and writes them — a file the Go side wrote is read
here, a corpus written here is planned by the real server's ``policy plan``, and the refusals carry the
server's codes."""

from __future__ import annotations

import json
import pathlib
import subprocess

import pytest

from throttlekit import Decision
from throttlekit.trace import Fingerprint, Step, Trace, TraceError, dumps, dumps_corpus, loads, loads_corpus

from .conftest import ROOT

GO_TRACE = ROOT / "sdk-go" / "trace" / "testdata" / "manual-gcra.json"


def test_a_trace_the_go_side_wrote() -> None:
    t = loads(GO_TRACE.read_text())
    assert t.fingerprint is not None
    assert t.fingerprint.clock == "manual"
    assert t.fingerprint.spec == {"burst": 2, "limit": 3, "periodMs": 1000, "strategy": "gcra"}
    assert t.fingerprint.prefix == "api"
    assert len(t.steps) == 8
    first = t.steps[0]
    assert (first.key, first.cost, first.at) == ("alice", 1, 1_700_000_000_000)
    assert first.decision == Decision(allowed=True, limit=2, remaining=1, reset_at=1_700_000_000_334, retry_after_ms=0)
    # Written back, it is the same JSON value.
    assert json.loads(dumps(t)) == json.loads(GO_TRACE.read_text())


def test_round_trip_and_corpus() -> None:
    spec: dict[str, object] = {"strategy": "fixedWindow", "limit": 3, "windowMs": 1000}
    t = Trace(
        steps=[Step("a", 1, 10, Decision(True, 3, 2, 1000, 0)), Step("b", 2, 11, Decision(False, 3, 0, 1000, 989))],
        fingerprint=Fingerprint(spec=dict(spec), strategy={"name": "fixedWindow", "limit": 3}),
        truncated=True,
        dropped=2,
    )
    assert loads(dumps(t)) == t
    # A trace built from logs has no decisions: it is read for its arrivals.
    logs = Trace(steps=[Step("a", 1, 10)])
    assert loads(dumps(logs), arrivals_only=True) == logs
    corpus = loads_corpus(dumps_corpus({"api": [t, logs], "one": t}))
    assert [len(x.steps) for x in corpus["api"]] == [2, 1]
    assert corpus["one"][0].truncated and corpus["one"][0].steps[0].decision is None


@pytest.mark.parametrize(
    ("text", "code", "fragment"),
    [
        ('{"version": 2, "steps": []}', "trace-format-version", "version is 2"),
        ('{"steps": []}', "trace-format-version", "version is missing"),
        ("{", "trace-malformed", ""),
        (
            '{"version": 1, "steps": [{"key": 5, "cost": 1, "at": 1}]}',
            "trace-malformed",
            "key is missing or not a string",
        ),
        ('{"version": 1, "steps": [{"key": "a", "cost": 0, "at": 1}]}', "trace-malformed", "it must be positive"),
        ('{"version": 1, "steps": [{"key": "a", "cost": 1.5, "at": 1}]}', "trace-malformed", "not a whole number"),
        ('{"version": 1, "steps": [{"key": "a", "cost": 1}]}', "trace-malformed", "at is missing"),
        ('{"version": 1, "steps": [{"key": "a", "cost": 1, "at": 1}]}', "trace-malformed", "decision.allowed"),
    ],
)
def test_refusals(text: str, code: str, fragment: str) -> None:
    with pytest.raises(TraceError) as e:
        loads(text)
    assert e.value.code == code
    assert fragment in str(e.value)
    assert isinstance(e.value, ValueError)


def test_arrivals_only_needs_no_decision() -> None:
    t = loads('{"version": 1, "steps": [{"key": "a", "cost": 2, "at": 5}]}', arrivals_only=True)
    assert t.steps == [Step("a", 2, 5)]


def test_a_corpus_from_logs_planned_by_the_server(server_bin: str, tmp_path: pathlib.Path) -> None:
    """A corpus built here from "logs" is read as it is by the real server's ``policy plan``."""
    log = [("alice", 1000 + i) for i in range(6)] + [("bob", 1010)]
    corpus = tmp_path / "corpus.json"
    corpus.write_text(dumps_corpus({"api": Trace(steps=[Step(user, 1, at) for user, at in log])}))
    current = tmp_path / "current.yaml"
    current.write_text("version: 1\nlimiters:\n  api: { strategy: fixedWindow, limit: 3, windowMs: 1000 }\n")
    candidate = tmp_path / "candidate.yaml"
    candidate.write_text("version: 1\nlimiters:\n  api: { strategy: fixedWindow, limit: 5, windowMs: 1000 }\n")
    files = ["--config", str(current), "--candidate", str(candidate), "--corpus", str(corpus)]
    out = subprocess.run(
        [server_bin, "policy", "plan", *files, "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)
    assert plan["summary"]["denyToAllow"] == 2
    assert plan["diffs"][0]["topFlippedKeys"][0]["key"] == "alice"
