"""What the Monitor door reports: a server's snapshot and its denials, as plain values.

Keys in snapshots and denials are the callers' identities: treat them as personal data."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MonitorPolicy:
    """One policy's counters over the server's analytics window (fail-open decisions count as allowed,
    fail-closed ones as denied); ``limit`` is the last ceiling seen, 0 if unknown."""

    name: str
    kind: str
    strategy: str
    allowed: int
    denied: int
    limit: int


@dataclass(frozen=True)
class MonitorSnapshot:
    """A server's state at ``generated_at`` (epoch ms) over ``window_ms``: the typed projection, and the
    whole snapshot as the server's JSON in ``raw_json`` (latency, top keys, per-second series, token
    burn, guards, recent denials)."""

    generated_at: int
    window_ms: int
    mode: str
    lens_version: str
    node_id: str
    policies: tuple[MonitorPolicy, ...]
    raw_json: str

    def parsed(self) -> dict[str, Any]:
        """:attr:`raw_json`, decoded."""
        data: dict[str, Any] = json.loads(self.raw_json)
        return data


@dataclass(frozen=True)
class Denial:
    """One denied request, as :meth:`MonitorBackend.watch` streams it; ``axis`` is the binding axis
    (``"rate"``, ``"concurrency"`` or ``"cost"``)."""

    at: int
    policy: str
    key: str
    axis: str
    limit: int
    remaining: int
    retry_after_ms: int


def snapshot_from_proto(msg: Any) -> MonitorSnapshot:
    meta = msg.meta
    return MonitorSnapshot(
        generated_at=int(meta.generated_at),
        window_ms=int(meta.window_ms),
        mode=str(meta.mode),
        lens_version=str(meta.lens_version),
        node_id=str(meta.node_id),
        policies=tuple(
            MonitorPolicy(str(p.name), str(p.kind), str(p.strategy), int(p.allowed), int(p.denied), int(p.limit))
            for p in msg.policies
        ),
        raw_json=str(msg.raw_json),
    )


def denial_from_proto(d: Any) -> Denial:
    return Denial(
        int(d.at), str(d.policy), str(d.key), str(d.axis), int(d.limit), int(d.remaining), int(d.retry_after_ms)
    )


__all__ = ["Denial", "MonitorPolicy", "MonitorSnapshot"]
