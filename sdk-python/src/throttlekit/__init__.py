"""ThrottleKit for Python: rate, cost and concurrency limits through a ``throttlekit-server``
(:class:`ServiceBackend`) or straight in the Redis a fleet shares (:class:`RedisBackend`).

Importing this package imports neither grpc nor redis: the backends load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .decision import Decision, Forecast
from .errors import (
    InvalidRequestError,
    OperationNotSupportedError,
    PolicyNotFoundError,
    ServiceUnavailableError,
    ThrottleKitError,
    UnauthenticatedError,
)
from .fleet import Lease
from .headers import decision_headers
from .lease_spender import LeaseGrant, LeaseSpender
from .monitor import Denial, MonitorPolicy, MonitorSnapshot
from .ratelimit import Checker, OnUnavailable, RateLimited, bind_policy, rate_limit
from .strategies import (
    FixedWindow,
    Gcra,
    Quota,
    SlidingWindow,
    SlidingWindowLog,
    Strategy,
    TokenBucket,
    TokenBudget,
    from_spec,
)

if TYPE_CHECKING:
    from ._service import HeartbeatResult
    from .fleet_backend import FleetBackend, LeasedLimiter
    from .fleet_backend_async import AsyncFleetBackend, AsyncLeasedLimiter
    from .monitor_backend import MonitorBackend
    from .monitor_backend_async import AsyncMonitorBackend
    from .redis_backend import RedisBackend, RedisClientLike
    from .redis_backend_async import AsyncRedisBackend, AsyncRedisClientLike
    from .service_backend import Admission, ServiceBackend
    from .service_backend_async import AsyncAdmission, AsyncServiceBackend

_LAZY = {
    "ServiceBackend": "service_backend",
    "Admission": "service_backend",
    "AsyncServiceBackend": "service_backend_async",
    "AsyncAdmission": "service_backend_async",
    "HeartbeatResult": "_service",
    "RedisBackend": "redis_backend",
    "RedisClientLike": "redis_backend",
    "AsyncRedisBackend": "redis_backend_async",
    "AsyncRedisClientLike": "redis_backend_async",
    "FleetBackend": "fleet_backend",
    "LeasedLimiter": "fleet_backend",
    "AsyncFleetBackend": "fleet_backend_async",
    "AsyncLeasedLimiter": "fleet_backend_async",
    "MonitorBackend": "monitor_backend",
    "AsyncMonitorBackend": "monitor_backend_async",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'throttlekit' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
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
]
