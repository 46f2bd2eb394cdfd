"""The shipped Lua scripts and their manifest (copied from the repository's lua/ by
scripts/gen-lua.py). Read on first use, never at import."""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True, slots=True)
class Script:
    name: str
    strategy: str
    role: str
    argv: tuple[str, ...]
    body: str
    sha1: str
    optional: tuple[str, ...] = ()


@functools.cache
def scripts() -> dict[tuple[str, str], Script]:
    """Every script of the manifest, by (strategy, role); each body's digest is checked against it."""
    root = resources.files("throttlekit").joinpath("lua")
    manifest = json.loads(root.joinpath("manifest.json").read_text(encoding="utf-8"))
    out: dict[tuple[str, str], Script] = {}
    for entry in manifest["scripts"]:
        raw = root.joinpath(entry["file"]).read_bytes()
        if hashlib.sha256(raw).hexdigest() != entry["sha256"]:
            raise RuntimeError(f"throttlekit: shipped script {entry['file']} does not match its manifest digest")
        out[(entry["strategy"], entry["role"])] = Script(
            name=entry["name"],
            strategy=entry["strategy"],
            role=entry["role"],
            argv=tuple(entry["argv"]),
            body=raw.decode("utf-8"),
            sha1=hashlib.sha1(raw).hexdigest(),
            optional=tuple(entry.get("argvOptional", ())),
        )
    return out


# The TTL floor sent with a request that carries its own instant (a replay):
# Redis expires keys on its real clock while such instants may stand still,
# and state kept past its TTL decides exactly as the absent state it decays
# to, so keeping it a minute longer never changes a decision.
OWN_INSTANT_TTL_FLOOR_MS = 60_000


def script(strategy: str, role: str) -> Script:
    try:
        return scripts()[(strategy, role)]
    except KeyError:
        raise ValueError(f"no {role} script for strategy {strategy!r}") from None


def arg(value: float) -> str:
    """An ARGV number as text that Lua's tonumber reads back to the same double."""
    if isinstance(value, int) or (float(value).is_integer() and abs(value) < 2**53):
        return str(int(value))
    return repr(float(value))


def prepare(strategy: str, params: dict[str, float], role: str) -> tuple[Script, list[str], int, int]:
    """ARGV in manifest order with the options filled in, and the indexes of now and cost (-1 if none)."""
    s = script(strategy, role)
    argv: list[str] = []
    now_at = cost_at = -1
    for i, name in enumerate(s.argv):
        if name == "now":
            now_at = i
            argv.append("0")
        elif name in ("cost", "tokens"):
            cost_at = i
            argv.append("1")
        elif name in params:
            argv.append(arg(params[name]))
        else:
            raise ValueError(f"script {s.name} wants ARGV {name!r}, which the strategy does not have")
    return s, argv, now_at, cost_at
