"""Drives the ecosystem's own Python client (throttlekit-py from PyPI, pinned
by scripts/install-services.sh) against our server and our Redis, exactly as
its Getting Started page calls it, and prints what it saw as JSON for the Go
test (conformance/ecosystem_test.go) to check.

    ecosystem_client.py TARGET REDIS_URL
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from typing import Any


def main() -> None:
    target, redis_url = sys.argv[1], sys.argv[2]
    import redis
    from throttlekit import Gcra, RedisBackend, ServiceBackend
    from throttlekit.errors import OperationNotSupportedError, PolicyNotFoundError, ServiceUnavailableError

    out: dict[str, Any] = {}
    with ServiceBackend(target) as rl:
        out["checks"] = [asdict(rl.check("api", "alice")) for _ in range(6)]
        out["check_many"] = [asdict(d) for d in rl.check_many("window", ["a", "b", "a"])]
        out["peek"] = asdict(rl.peek("window", "a"))
        out["forecast"] = asdict(rl.forecast("window", "a", 1))
        out["debit"] = asdict(rl.debit("completions", "tenant", 80))
        try:
            rl.check("typo-policy", "alice")
            out["not_found"] = "no error"
        except PolicyNotFoundError:
            out["not_found"] = "PolicyNotFoundError"
        try:
            rl.admit("api", "alice")
            out["unsupported"] = "no error"
        except OperationNotSupportedError:
            out["unsupported"] = "OperationNotSupportedError"
        # A fair share: Check decides; Peek is not served.
        out["fair"] = {
            "checks": [
                {"tenant": t, "decision": asdict(rl.check("gpu", t))} for _ in range(10) for t in ("team-a", "team-b")
            ]
        }
        try:
            rl.peek("gpu", "team-a")
            out["fair"]["peek"] = "no error"
        except OperationNotSupportedError:
            out["fair"]["peek"] = "OperationNotSupportedError"
        with rl.admit("checkout", "alice") as adm:
            out["admission"] = {"allowed": adm.allowed, "held": adm.held, "lease_id": adm.lease_id,
                                "binding_axis": adm.binding_axis}

    # The direct door, with the server's prefix: one budget with the server.
    client = redis.Redis.from_url(redis_url)
    api = RedisBackend(client, Gcra(limit=5, period_ms=3_600_000, burst=5), prefix="shared")
    out["direct"] = [asdict(api.check("bob")) for _ in range(3)]

    # The Monitor door, read by the ecosystem's MonitorBackend unchanged. The
    # server aggregates off the decision path: wait for the six api checks.
    from throttlekit import MonitorBackend

    with MonitorBackend(target) as mon:
        deadline = time.monotonic() + 30
        while True:
            snap = mon.get_snapshot()
            seen = {p.name: p.allowed + p.denied for p in snap.policies}
            if (seen.get("api"), seen.get("gpu")) == (6, 20) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        out["monitor"] = {
            "mode": snap.mode,
            "window_ms": snap.window_ms,
            "node_id": snap.node_id,
            "policies": [asdict(p) for p in snap.policies],
            "parsed_policy_names": [p["name"] for p in snap.parsed()["policies"]],
        }

    # The Fleet door, leased by the ecosystem's FleetBackend unchanged.
    from throttlekit import FleetBackend

    with FleetBackend(target) as fleet:
        lease = fleet.reserve("fed", domain="acme", wants=3)
        limiter = fleet.leased("fed", domain="py", batch=4)
        out["fleet"] = {
            "lease": {"capacity": lease.capacity, "limit": lease.limit, "expiry_ms": lease.expiry_ms},
            "leased": [asdict(limiter.check()) for _ in range(12)],
        }
        try:
            fleet.reserve("api")
            out["fleet"]["not_federated"] = "no error"
        except OperationNotSupportedError:
            out["fleet"]["not_federated"] = "OperationNotSupportedError"

    try:
        with ServiceBackend("127.0.0.1:1") as dead:
            dead.check("api", "alice")
        out["unavailable"] = "no error"
    except ServiceUnavailableError:
        out["unavailable"] = "ServiceUnavailableError"
    print(json.dumps(out))


if __name__ == "__main__":
    main()
