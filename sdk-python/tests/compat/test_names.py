"""Every public name of 0.5.1 is importable from where 0.5.1 put it."""

from __future__ import annotations

import importlib

import pytest

# 0.5.1's own throttlekit.__all__ and each module's public names, as published.
PUBLIC = {
    "throttlekit": [
        "ServiceBackend",
        "Admission",
        "RedisBackend",
        "RedisClientLike",
        "AsyncServiceBackend",
        "AsyncAdmission",
        "AsyncRedisBackend",
        "AsyncRedisClientLike",
        "LeaseSpender",
        "LeaseGrant",
        "FleetBackend",
        "Lease",
        "LeasedLimiter",
        "AsyncFleetBackend",
        "AsyncLeasedLimiter",
        "MonitorBackend",
        "MonitorPolicy",
        "MonitorSnapshot",
        "AsyncMonitorBackend",
        "Strategy",
        "Gcra",
        "TokenBucket",
        "FixedWindow",
        "SlidingWindow",
        "SlidingWindowLog",
        "from_spec",
        "Decision",
        "Forecast",
        "ThrottleKitError",
        "PolicyNotFoundError",
        "OperationNotSupportedError",
        "ServiceUnavailableError",
        "decision_headers",
        "rate_limit",
        "RateLimited",
        "bind_policy",
        "Checker",
        "OnUnavailable",
        "__version__",
    ],
    "throttlekit.decision": ["Decision", "Forecast"],
    "throttlekit.errors": [
        "ThrottleKitError",
        "PolicyNotFoundError",
        "OperationNotSupportedError",
        "ServiceUnavailableError",
    ],
    "throttlekit.headers": ["decision_headers", "Style"],
    "throttlekit.lease_spender": ["LeaseGrant", "LeaseSpender"],
    "throttlekit.ratelimit": ["RateLimited", "Checker", "OnUnavailable", "bind_policy", "rate_limit"],
    "throttlekit.strategies": [
        "Strategy",
        "Gcra",
        "TokenBucket",
        "FixedWindow",
        "SlidingWindow",
        "SlidingWindowLog",
        "from_spec",
    ],
    "throttlekit.service_backend": [
        "Admission",
        "ServiceBackend",
        "Decision",
        "Forecast",
        "ThrottleKitError",
        "PolicyNotFoundError",
        "OperationNotSupportedError",
        "ServiceUnavailableError",
    ],
    "throttlekit.service_backend_async": ["AsyncAdmission", "AsyncServiceBackend", "Decision", "Forecast"],
    "throttlekit.fleet_backend": ["FleetBackend", "Lease", "LeasedLimiter"],
    "throttlekit.fleet_backend_async": ["AsyncFleetBackend", "AsyncLeasedLimiter"],
    "throttlekit.monitor_backend": ["MonitorBackend", "MonitorPolicy", "MonitorSnapshot"],
    "throttlekit.monitor_backend_async": ["AsyncMonitorBackend"],
    "throttlekit.redis_backend": ["RedisBackend", "RedisClientLike"],
    "throttlekit.redis_backend_async": ["AsyncRedisBackend", "AsyncRedisClientLike"],
    "throttlekit.contrib": ["decision_headers", "Checker", "OnUnavailable", "RateLimited", "bind_policy", "rate_limit"],
    "throttlekit.contrib.starlette": ["ThrottleKitMiddleware", "ServiceUnavailableError", "decision_headers"],
    "throttlekit.contrib.fastapi": ["RateLimit", "ThrottleKitMiddleware"],
    "throttlekit.contrib.flask": ["ThrottleKit"],
    "throttlekit.contrib.django": ["Ratelimited", "rate_limit", "ThrottleKitMiddleware"],
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_public_names(module: str) -> None:
    mod = importlib.import_module(module)
    missing = [n for n in PUBLIC[module] if not hasattr(mod, n)]
    assert not missing, f"{module} lacks {missing}"


def test_package_all_lists_them() -> None:
    import throttlekit

    assert set(PUBLIC["throttlekit"]) <= set(throttlekit.__all__)
