"""What both gRPC backends share: the generated stubs, channels, and the mapping of status codes to
:mod:`throttlekit.errors`. Importing this module imports grpc, so only the backends do."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import grpc
import grpc.aio

from .decision import Decision, Forecast
from .errors import (
    InvalidRequestError,
    OperationNotSupportedError,
    PolicyNotFoundError,
    ServiceUnavailableError,
    ThrottleKitError,
    UnauthenticatedError,
)
from .v1 import throttlekit_pb2 as pb
from .v1 import throttlekit_pb2_grpc as pb_grpc

__all__ = [
    "Decision",
    "Forecast",
    "Metadata",
    "aio_channel",
    "as_error",
    "channel",
    "decision",
    "forecast",
    "pb",
    "pb_grpc",
    "with_secret",
]

Metadata = Sequence[tuple[str, str]] | Callable[[], Sequence[tuple[str, str]]]
"""gRPC metadata sent with every call: pairs, or a function returning them for each call (a rotating
credential, a request id)."""


def channel(
    target: str, credentials: grpc.ChannelCredentials | None, options: Sequence[tuple[str, Any]] | None
) -> grpc.Channel:
    """A channel to ``target``: TLS with ``credentials``, else plaintext (loopback and development)."""
    opts = list(options or [])
    if credentials is not None:
        return grpc.secure_channel(target, credentials, opts)
    return grpc.insecure_channel(target, opts)


def aio_channel(
    target: str, credentials: grpc.ChannelCredentials | None, options: Sequence[tuple[str, Any]] | None
) -> grpc.aio.Channel:
    """The asyncio twin of :func:`channel`."""
    opts = list(options or [])
    if credentials is not None:
        return grpc.aio.secure_channel(target, credentials, opts)
    return grpc.aio.insecure_channel(target, opts)


def with_secret(metadata: Metadata | None, header: str, secret: str | None) -> Metadata | None:
    """``metadata`` plus the door's secret (``header: secret``) when one is given."""
    if not secret:
        return metadata
    pair = ((header, secret),)
    if metadata is None:
        return pair
    if callable(metadata):
        fn = metadata
        return lambda: (*fn(), *pair)
    return (*metadata, *pair)


_BY_CODE: dict[Any, type[ThrottleKitError]] = {
    grpc.StatusCode.NOT_FOUND: PolicyNotFoundError,
    grpc.StatusCode.UNIMPLEMENTED: OperationNotSupportedError,
    grpc.StatusCode.UNAVAILABLE: ServiceUnavailableError,
    # A call that did not finish in time tells the caller the same as one that could not start.
    grpc.StatusCode.DEADLINE_EXCEEDED: ServiceUnavailableError,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidRequestError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
}


def as_error(err: grpc.RpcError) -> ThrottleKitError:
    code = err.code() if hasattr(err, "code") else None
    details = err.details() if hasattr(err, "details") else str(err)
    cls = _BY_CODE.get(code, ThrottleKitError)
    name = code.name if code is not None else "UNKNOWN"
    return cls(f"{name}: {details}")


def decision(d: Any) -> Decision:
    return Decision(bool(d.allowed), int(d.limit), int(d.remaining), int(d.reset_at), int(d.retry_after_ms))


def forecast(f: Any) -> Forecast:
    return Forecast(int(f.spendable_now), int(f.next_replenish_at), int(f.full_at))


def check_units(name: str, n: int) -> int:
    """Client-side validation, so a bad call fails before the network: 0 means 1."""
    if not isinstance(n, int) or isinstance(n, bool):
        raise InvalidRequestError(f"{name} must be an int, not {type(n).__name__}")
    if n < 0:
        raise InvalidRequestError(f"{name} must not be negative (got {n})")
    return n


def admit_request(policy: str, key: str, cost: int, hold: int, value: int) -> Any:
    return pb.AdmitRequest(
        policy=policy,
        key=key,
        cost=check_units("cost", cost),
        hold=check_units("hold", hold),
        value=check_units("value", value),
    )
