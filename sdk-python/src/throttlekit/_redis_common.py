"""What the sync and async direct doors share: ARGV, replies, state parsing. No I/O here."""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import time
from collections.abc import Sequence
from typing import Any

from . import _engine, _lua
from .decision import Decision, Forecast
from .errors import InvalidRequestError, OperationNotSupportedError, ThrottleKitError
from .strategies import Quota, Strategy


def join(prefix: str, key: str) -> str:
    """prefix:key, or key when the prefix is empty: the key scheme of every ThrottleKit client."""
    return f"{prefix}:{key}" if prefix else key


def units(cost: int) -> int:
    if not isinstance(cost, int) or isinstance(cost, bool):
        raise InvalidRequestError(f"cost must be an int, not {type(cost).__name__}")
    if cost < 0:
        raise InvalidRequestError(f"cost must not be negative (got {cost})")
    return cost or 1


def instant(now: int | None) -> str:
    if now is None:
        return "0"  # the Redis server's clock: a fleet never disagrees about time
    if not isinstance(now, int) or isinstance(now, bool) or now <= 0:
        raise InvalidRequestError(f"now must be a positive epoch-ms int or None, not {now!r}")
    return str(now)


def is_noscript(err: BaseException) -> bool:
    """A refused EVALSHA of a script Redis does not hold: redis-py raises NoScriptError (whose text
    drops the NOSCRIPT prefix); other clients pass the server's text on."""
    text = str(err)
    return type(err).__name__ == "NoScriptError" or text.startswith("NOSCRIPT") or "No matching script" in text


def as_text(v: Any) -> str | None:
    if v is None or v is False:
        return None
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return str(v)


_DECIMAL = re.compile(r"[-+]?[0-9]*\.?[0-9]*[eE]?[-+]?[0-9]*")


def decimal(v: str) -> float:
    """A number in state, read only in the plain decimal form the scripts write (no spaces, hex,
    underscores, inf or nan): the form every client's parser reads alike; else ValueError."""
    if not _DECIMAL.fullmatch(v):
        raise ValueError(f"{v!r} is not a plain decimal number")
    f = float(v)
    if math.isinf(f):
        raise ValueError(f"{v!r} is out of range")
    return f


# The quota script's refusal of the midnights it was sent, naming the instant it decided on.
_OUTSIDE = re.compile(r"quota: the instant (-?[0-9]+) is outside the periods sent")


class Prepared:
    """One strategy bound to its check and state scripts."""

    def __init__(self, strategy: Strategy, prefix: str, key_hash_secret: str | bytes | None = None) -> None:
        if not isinstance(prefix, str):
            raise ValueError(f"prefix must be a str, not {type(prefix).__name__}")
        if key_hash_secret is not None and not key_hash_secret:
            raise ValueError("key_hash_secret must not be empty")
        self.strategy = strategy
        self.prefix = prefix
        self._hash_secret = key_hash_secret.encode() if isinstance(key_hash_secret, str) else key_hash_secret
        params = strategy.params()
        role = "debit" if strategy.kind == "tokenBudget" else "check"
        # A rolling quota is a sliding window: its scripts and state layout are the window's.
        self._layout = strategy.kind
        if isinstance(strategy, Quota) and strategy.reset_cadence == "rolling":
            self._layout = "slidingWindow"
        # A quota in a time zone is sent the local midnights around each call's instant: the script
        # picks the period of its own clock among them.
        self._zone = strategy if isinstance(strategy, Quota) and strategy.time_zone is not None else None
        self.check, self._check_argv, self._now_at, self._cost_at = _lua.prepare(self._layout, params, role)
        # A budget is metered, not looked ahead at: it has no state script and no peek or forecast.
        self._state_script = None if role == "debit" else _lua.script(self._layout, "state")
        self._model = None if role == "debit" else _engine.model(strategy)

    def key(self, key: str) -> str:
        if not isinstance(key, str) or not key:
            raise InvalidRequestError("key must be a non-empty str")
        if self._hash_secret is not None:
            # A policy with keyHash: sha256 stores the keyed hash, never the key.
            key = hmac.new(self._hash_secret, key.encode(), hashlib.sha256).hexdigest()
        return join(self.prefix, key)

    def check_args(self, cost: int, now: int | None, around: int | None = None) -> list[str]:
        """ARGV for a check; a quota in a time zone is sent the midnights around ``around``, else
        around ``now`` or, on the Redis clock, this machine's clock."""
        argv = list(self._check_argv)
        argv[self._now_at] = instant(now)
        argv[self._cost_at] = str(units(cost))
        if self._zone is not None:
            argv.append(str(_lua.OWN_INSTANT_TTL_FLOOR_MS) if now is not None else "1")  # 1: no floor
            if around is None:
                around = now if now is not None else time.time_ns() // 1_000_000
            argv.extend(str(b) for b in self._zone.around(around))
        elif now is not None and "ttlFloorMs" in self.check.optional:
            argv.append(str(_lua.OWN_INSTANT_TTL_FLOOR_MS))
        return argv

    def retry_args(self, err: BaseException, cost: int, now: int | None) -> list[str] | None:
        """ARGV for a second attempt when the script refused a zone's midnights as not holding the
        Redis clock's instant (this machine's clock is a period or more off it; the script touched
        no key): the same check, sent the midnights around the instant it reported. None when
        ``err`` is anything else."""
        if self._zone is None or now is not None:
            return None
        m = _OUTSIDE.search(str(err))
        if m is None:
            return None
        return self.check_args(cost, now, int(m.group(1)))

    @staticmethod
    def decision(reply: Any) -> Decision:
        if not isinstance(reply, list | tuple) or len(reply) not in (5, 6):
            raise ThrottleKitError(f"unexpected script reply {reply!r}")
        a, lim, rem, reset, retry = (int(x) for x in reply[:5])
        return Decision(a == 1, lim, rem, reset, retry)

    @property
    def state(self) -> _lua.Script:
        if self._state_script is None:
            raise OperationNotSupportedError(f"{self.strategy.kind} has no peek or forecast: it is metered by check")
        return self._state_script

    @property
    def model(self) -> _engine.Model:
        if self._model is None:
            raise OperationNotSupportedError(f"{self.strategy.kind} has no peek or forecast: it is metered by check")
        return self._model

    def parse_state(self, reply: Any) -> tuple[_engine.State, int]:
        """The state script's reply as the engine's state and the instant it was read at; state that
        does not parse, or is not sane, reads as absent (the next check resets the key)."""
        if not isinstance(reply, list | tuple) or not reply:
            raise ThrottleKitError(f"unexpected state reply {reply!r}")
        now = int(reply[0])
        rest = [as_text(v) for v in reply[1:]]
        try:
            s = self._state(rest)
        except ValueError:
            return _engine.State(), now
        return _engine.sanitized(self.model, s, now), now

    def _state(self, rest: Sequence[str | None]) -> _engine.State:
        kind = self._layout
        s = _engine.State()
        if kind == "gcra":
            if rest and rest[0] is not None:
                s.present, s.v0 = True, decimal(rest[0])
        elif kind in ("tokenBucket", "fixedWindow", "quota"):
            if len(rest) >= 2 and rest[0] is not None and rest[1] is not None:
                s.present, s.v0, s.v1 = True, decimal(rest[0]), decimal(rest[1])
        elif kind == "slidingWindow":
            if rest:
                slots = int(self.strategy.params()["buckets"]) + 1
                s.present = True
                s.series = [-1.0 if i % 2 == 0 else 0.0 for i in range(2 * slots)]
                for i in range(0, len(rest) - 1, 2):
                    field, value = rest[i] or "", rest[i + 1] or ""
                    # A slot is its index as the scripts write it: digits, no sign or leading zero.
                    slot = int(field) if field.isascii() and field.isdigit() else -1
                    tick, sep, count = value.partition(":")
                    if not sep or str(slot) != field or not 0 <= slot < slots:
                        raise ValueError(f"bad slot {field}={value}")
                    s.series[2 * slot], s.series[2 * slot + 1] = decimal(tick), decimal(count)
        elif kind == "slidingWindowLog" and rest:
            s.present = True
            s.series = sorted(float(rest[i] or "nan") for i in range(1, len(rest), 2))
        if any(math.isnan(v) for v in (s.v0, s.v1, *s.series)):
            raise ValueError("not a number")
        return s

    def peek(self, reply: Any) -> Decision:
        s, now = self.parse_state(reply)
        return self.model.peek(s, now)

    def forecast(self, reply: Any, cost: int) -> Forecast:
        s, now = self.parse_state(reply)
        return _engine.forecast_of(self.model, s, now, units(cost))
