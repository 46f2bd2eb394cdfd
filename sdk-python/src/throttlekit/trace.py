"""Traces: the recorded arrivals of one rate policy, in the ecosystem's JSON format (version 1) — what
``throttlekit-server capture export`` writes and ``throttlekit-server policy plan --corpus`` reads.

Build one from your own logs to plan a limit change on real traffic::

    from throttlekit.trace import Step, Trace, dumps_corpus

    steps = [Step(key=row.user, cost=1, at=row.epoch_ms) for row in access_log]
    open("corpus.json", "w").write(dumps_corpus({"api": [Trace(steps=steps)]}))

then ``throttlekit-server policy plan --config policies.yaml --candidate new.yaml --corpus corpus.json``.
Parsing refuses what the server refuses, with the same codes (:class:`TraceError`)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .decision import Decision
from .errors import ThrottleKitError

VERSION = 1
"""The format's version."""

_MAX_EXACT = 2**53


class TraceError(ThrottleKitError, ValueError):
    """A trace that cannot be read; ``code`` is the ecosystem's name for why
    (``trace-format-version``, ``trace-malformed``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


@dataclass(frozen=True, slots=True)
class Step:
    """One arrival and, when recorded, the decision it got."""

    key: str
    cost: int
    at: int
    """Epoch ms of the arrival."""
    decision: Decision | None = None


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """The policy a trace was recorded under: its strategy's fields as a policy file names them
    (durations in ms), a summary, and the clock its instants are on (``manual``: the decider's own)."""

    spec: dict[str, Any]
    strategy: dict[str, Any]
    clock: str = "manual"
    axis: str = "rate"
    prefix: str | None = None


@dataclass(frozen=True, slots=True)
class Trace:
    """A policy's recorded arrivals. A trace built from logs needs only its steps."""

    steps: list[Step] = field(default_factory=list)
    fingerprint: Fingerprint | None = None
    redacted: bool = False
    truncated: bool = False
    """The recording lost arrivals: a replay of it is not the whole traffic."""
    dropped: int = 0


def _whole(value: object, step: int, name: str) -> int:
    if value is None:
        raise TraceError("trace-malformed", f"step {step}: {name} is missing")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TraceError("trace-malformed", f"step {step}: {name} is not a number")
    if not math.isfinite(value) or value != math.trunc(value) or abs(value) > _MAX_EXACT:
        raise TraceError("trace-malformed", f"step {step}: {name} is {value}, not a whole number within ±2^53")
    return int(value)


def _from_obj(obj: object, *, decisions: bool) -> Trace:
    if not isinstance(obj, Mapping):
        raise TraceError("trace-malformed", "a trace is a JSON object")
    version = obj.get("version")
    if version != VERSION or isinstance(version, bool):
        given = "missing" if version is None else version
        raise TraceError("trace-format-version", f"version is {given}; this reader knows {VERSION}")
    raw_steps = obj.get("steps", [])
    if not isinstance(raw_steps, list):
        raise TraceError("trace-malformed", "steps is not a list")
    steps: list[Step] = []
    for i, s in enumerate(raw_steps):
        if not isinstance(s, Mapping):
            raise TraceError("trace-malformed", f"step {i} is not an object")
        key = s.get("key")
        if not isinstance(key, str):
            raise TraceError("trace-malformed", f"step {i}: key is missing or not a string")
        cost = _whole(s.get("cost"), i, "cost")
        if cost <= 0:
            raise TraceError("trace-malformed", f"step {i}: cost is {cost}; it must be positive")
        at = _whole(s.get("at"), i, "at")
        decision = None
        if decisions:
            d = s.get("decision")
            if not isinstance(d, Mapping) or not isinstance(d.get("allowed"), bool):
                raise TraceError("trace-malformed", f"step {i}: decision.allowed is missing or not a boolean")
            decision = Decision(
                allowed=d["allowed"],
                limit=_whole(d.get("limit"), i, "decision.limit"),
                remaining=_whole(d.get("remaining"), i, "decision.remaining"),
                reset_at=_whole(d.get("resetAt"), i, "decision.resetAt"),
                retry_after_ms=_whole(d.get("retryAfterMs"), i, "decision.retryAfterMs"),
            )
        steps.append(Step(key=key, cost=cost, at=at, decision=decision))
    fp = obj.get("fingerprint")
    fingerprint = None
    if isinstance(fp, Mapping):
        fingerprint = Fingerprint(
            spec=dict(fp.get("spec") or {}),
            strategy=dict(fp.get("strategy") or {}),
            clock=str(fp.get("clock", "")),
            axis=str(fp.get("axis", "rate")),
            prefix=fp.get("prefix"),
        )
    elif fp is not None:
        raise TraceError("trace-malformed", "fingerprint is not an object")
    dropped = obj.get("dropped", 0)
    return Trace(
        steps=steps,
        fingerprint=fingerprint,
        redacted=bool(obj.get("redacted", False)),
        truncated=bool(obj.get("truncated", False)),
        dropped=int(dropped) if isinstance(dropped, int | float) and not isinstance(dropped, bool) else 0,
    )


def loads(text: str | bytes, *, arrivals_only: bool = False) -> Trace:
    """Parses a trace. With ``arrivals_only`` only each step's key, cost and at are read (a corpus
    needs no decisions), as ``policy plan --corpus`` reads them."""
    try:
        obj = json.loads(text)
    except ValueError as e:
        raise TraceError("trace-malformed", str(e)) from e
    return _from_obj(obj, decisions=not arrivals_only)


def _to_obj(trace: Trace) -> dict[str, Any]:
    steps: list[dict[str, Any]] = []
    for s in trace.steps:
        step: dict[str, Any] = {"key": s.key, "cost": s.cost, "at": s.at}
        if s.decision is not None:
            d = s.decision
            step["decision"] = {
                "allowed": d.allowed,
                "limit": d.limit,
                "remaining": d.remaining,
                "resetAt": d.reset_at,
                "retryAfterMs": d.retry_after_ms,
            }
        steps.append(step)
    out: dict[str, Any] = {
        "version": VERSION,
        "redacted": trace.redacted,
        "truncated": trace.truncated,
        "dropped": trace.dropped,
        "steps": steps,
    }
    if trace.fingerprint is not None:
        f = trace.fingerprint
        fp: dict[str, Any] = {"spec": f.spec, "strategy": f.strategy, "clock": f.clock, "axis": f.axis}
        if f.prefix:
            fp["prefix"] = f.prefix
        out["fingerprint"] = fp
    return out


def dumps(trace: Trace) -> str:
    """The trace as JSON."""
    return json.dumps(_to_obj(trace), separators=(",", ":"))


def loads_corpus(text: str | bytes) -> dict[str, list[Trace]]:
    """Parses a corpus: a JSON object of policy name to a trace or a list of traces (arrivals only)."""
    try:
        obj = json.loads(text)
    except ValueError as e:
        raise TraceError("trace-malformed", str(e)) from e
    if not isinstance(obj, Mapping):
        raise TraceError("trace-malformed", "a corpus is a JSON object of policy name to traces")
    out: dict[str, list[Trace]] = {}
    for name, v in obj.items():
        items = v if isinstance(v, list) else [v]
        out[str(name)] = [_from_obj(t, decisions=False) for t in items]
    return out


def dumps_corpus(corpus: Mapping[str, Sequence[Trace] | Trace]) -> str:
    """A corpus (policy name to its traces) as ``policy plan --corpus`` reads it."""
    out: dict[str, Any] = {}
    for name, traces in corpus.items():
        if isinstance(traces, Trace):
            traces = [traces]
        out[name] = [_to_obj(t) for t in traces]
    return json.dumps(out, separators=(",", ":"))


__all__ = ["VERSION", "Fingerprint", "Step", "Trace", "TraceError", "dumps", "dumps_corpus", "loads", "loads_corpus"]
