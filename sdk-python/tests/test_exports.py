"""The public surface, pinned: each public module's ``__all__`` is exactly what is listed here, and every
name in it resolves. Adding a name means adding it here; dropping one fails this test (0.5.1's names,
a subset of these, are pinned again where 0.5.1 put them, by tests/compat/test_names.py)."""

from __future__ import annotations

import importlib

import pytest

EXPORTS: dict[str, list[str]] = {
    "throttlekit": [
        "Admission",
        "AsyncAdmission",
        "AsyncFleetBackend",
        "AsyncLeasedLimiter",
        "AsyncMonitorBackend",
        "AsyncRedisBackend",
        "AsyncRedisClientLike",
        "AsyncServiceBackend",
        "Checker",
        "Decision",
        "Denial",
        "FixedWindow",
        "FleetBackend",
        "Forecast",
        "Gcra",
        "HeartbeatResult",
        "InvalidRequestError",
        "Lease",
        "LeaseGrant",
        "LeaseSpender",
        "LeasedLimiter",
        "MonitorBackend",
        "MonitorPolicy",
        "MonitorSnapshot",
        "OnUnavailable",
        "OperationNotSupportedError",
        "PolicyNotFoundError",
        "Quota",
        "RateLimited",
        "RedisBackend",
        "RedisClientLike",
        "ServiceBackend",
        "ServiceUnavailableError",
        "SlidingWindow",
        "SlidingWindowLog",
        "Strategy",
        "ThrottleKitError",
        "TokenBucket",
        "TokenBudget",
        "UnauthenticatedError",
        "__version__",
        "bind_policy",
        "decision_headers",
        "from_spec",
        "rate_limit",
    ],
    "throttlekit.decision": ["Decision", "Forecast"],
    "throttlekit.errors": [
        "InvalidRequestError",
        "OperationNotSupportedError",
        "PolicyNotFoundError",
        "ServiceUnavailableError",
        "ThrottleKitError",
        "UnauthenticatedError",
    ],
    "throttlekit.headers": ["STYLES", "Style", "decision_headers"],
    "throttlekit.lease_spender": ["LeaseGrant", "LeaseSpender"],
    "throttlekit.ratelimit": ["Checker", "OnUnavailable", "RateLimited", "bind_policy", "rate_limit"],
    "throttlekit.strategies": [
        "FixedWindow",
        "Gcra",
        "Quota",
        "SlidingWindow",
        "SlidingWindowLog",
        "Strategy",
        "TokenBucket",
        "TokenBudget",
        "from_spec",
    ],
    "throttlekit.service_backend": [
        "Admission",
        "HeartbeatResult",
        "InvalidRequestError",
        "OperationNotSupportedError",
        "PolicyNotFoundError",
        "ServiceBackend",
        "ServiceUnavailableError",
        "ThrottleKitError",
        "UnauthenticatedError",
    ],
    "throttlekit.service_backend_async": [
        "AsyncAdmission",
        "AsyncServiceBackend",
        "HeartbeatResult",
        "InvalidRequestError",
        "OperationNotSupportedError",
        "PolicyNotFoundError",
        "ServiceUnavailableError",
        "ThrottleKitError",
        "UnauthenticatedError",
    ],
    "throttlekit.fleet_backend": ["FleetBackend", "Lease", "LeasedLimiter"],
    "throttlekit.fleet_backend_async": ["AsyncFleetBackend", "AsyncLeasedLimiter"],
    "throttlekit.monitor_backend": ["Denial", "MonitorBackend", "MonitorPolicy", "MonitorSnapshot"],
    "throttlekit.monitor_backend_async": ["AsyncMonitorBackend"],
    "throttlekit.redis_backend": ["RedisBackend", "RedisClientLike"],
    "throttlekit.redis_backend_async": ["AsyncRedisBackend", "AsyncRedisClientLike"],
    "throttlekit.fleet": ["Lease"],
    "throttlekit.trace": [
        "Fingerprint",
        "Step",
        "Trace",
        "TraceError",
        "VERSION",
        "dumps",
        "dumps_corpus",
        "loads",
        "loads_corpus",
    ],
    "throttlekit.monitor": ["Denial", "MonitorPolicy", "MonitorSnapshot"],
    "throttlekit.contrib": ["Checker", "OnUnavailable", "RateLimited", "bind_policy", "decision_headers", "rate_limit"],
    "throttlekit.contrib.starlette": ["ServiceUnavailableError", "ThrottleKitMiddleware", "decision_headers", "peer"],
    "throttlekit.contrib.fastapi": ["RateLimit", "ThrottleKitMiddleware", "request_peer"],
    "throttlekit.contrib.flask": ["ThrottleKit", "remote_addr"],
    "throttlekit.contrib.django": ["Ratelimited", "ThrottleKitMiddleware", "rate_limit", "remote_addr"],
}


@pytest.mark.parametrize("module", sorted(EXPORTS))
def test_exports_are_pinned(module: str) -> None:
    mod = importlib.import_module(module)
    assert sorted(mod.__all__) == EXPORTS[module]
    unresolved = [n for n in mod.__all__ if getattr(mod, n, None) is None]
    assert not unresolved, f"{module} lists names it does not have: {unresolved}"


def test_the_05_names_are_a_subset() -> None:
    from .compat.test_names import PUBLIC

    for module, names in PUBLIC.items():
        mod = importlib.import_module(module)
        assert all(hasattr(mod, n) for n in names), module
