"""The exceptions a ThrottleKit client raises. A denial is never one of these: it is a
:class:`~throttlekit.Decision` with ``allowed`` false."""

from __future__ import annotations


class ThrottleKitError(Exception):
    """Every operational failure of a ThrottleKit client."""


class PolicyNotFoundError(ThrottleKitError):
    """The named policy is not configured on the server (gRPC NOT_FOUND)."""


class OperationNotSupportedError(ThrottleKitError):
    """The policy does not serve this operation, e.g. ``admit`` on a rate limiter (gRPC UNIMPLEMENTED)."""


class ServiceUnavailableError(ThrottleKitError):
    """The server cannot be reached (gRPC UNAVAILABLE), or did not answer within the call's timeout
    (DEADLINE_EXCEEDED): either way the caller has no decision, and settles fail open or closed."""


class UnauthenticatedError(ThrottleKitError):
    """The server wants the door's secret and the call sent none, or the wrong one (gRPC
    UNAUTHENTICATED): pass ``secret=`` to the backend."""


class InvalidRequestError(ThrottleKitError, ValueError):
    """The request is malformed: a negative cost, an empty policy or key, a key over the size limit
    (gRPC INVALID_ARGUMENT). Also a :class:`ValueError`, so code that validates input catches it."""


__all__ = [
    "InvalidRequestError",
    "OperationNotSupportedError",
    "PolicyNotFoundError",
    "ServiceUnavailableError",
    "ThrottleKitError",
    "UnauthenticatedError",
]
