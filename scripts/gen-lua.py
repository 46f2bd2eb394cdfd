#!/usr/bin/env python3
"""Derives each check script's many-key variant, stamps lua/manifest.json with
each script's sha256 (and the sha1 EVALSHA uses) and copies the scripts and
manifest to every package that ships them.

A check script ends with its check on one key: the lines from
`local key = KEYS[1]` to the end, at the top level (a function built on every
run costs Redis time). Its variant `<file>_many.lua` is the same text with those
lines as the body of `decide(key)` and a loop over KEYS calling it, so one script
run decides a batch at one instant with the very same code (role "checkMany").

lua/ is the one source, embedded by the Go package beside it; the copy exists
because a wheel carries its own files. The test command runs
this into a scratch tree and fails when a committed copy differs.

    scripts/gen-lua.py [--root DIR]   (DIR defaults to the repository root)
"""
import argparse
import hashlib
import json
import pathlib
import shutil

# Go embeds lua/ itself (the root module's lua package); a wheel needs its own copy.
COPIES = ["sdk-python/src/throttlekit/lua"]

ROLE_MANY = "checkMany"
DECIDE_LINE = "local key = KEYS[1]\n"
# Every check script builds its reply with this function...
REPLY = """local function reply(reset, allowed, lim, remaining, resetAt, retry)
  if reset then return {allowed, int(lim), int(remaining), int(resetAt), int(retry), 1} end
  return {allowed, int(lim), int(remaining), int(resetAt), int(retry)}
end
"""
# ...which the variant swaps for one returning the six integers as values:
# no table per key (measured: a 100-key run takes ~15% less time in Redis).
REPLY_MANY = """local function reply(reset, allowed, lim, remaining, resetAt, retry)
  return allowed, int(lim), int(remaining), int(resetAt), int(retry), reset and 1 or 0
end
"""
# One flat array, six integers per key (the reply's five and the reset flag,
# 0 or 1): Redis converts one table instead of one per key.
LOOP = """local out, n = {}, 0
for i = 1, #KEYS do
  out[n + 1], out[n + 2], out[n + 3], out[n + 4], out[n + 5], out[n + 6] = decide(KEYS[i])
  n = n + 6
end
return out
"""


# A script whose state is one record, read by `load(key)` (the deleted-corrupt
# flag, then the state) and written by `save(key, ttl, state...)` so that load
# reads back exactly what save was given, gets a variant that keeps a key's
# state in the run while the same key comes next in KEYS: a hot key's checks
# in one batch cost Redis one read and one write, not one of each per check
# (measured: a 17-check run on one key takes ~55% less time in Redis). Each
# check still sees the one before it, as separate runs would.
HOOKS = ("local function load(key)\n", "local function save(key, ttl, ")
LOOP_HELD = """-- A key that comes again next in KEYS keeps its state in the run (what save
-- was given) and is written once, when another key follows: load reads back
-- exactly what save writes, so each check sees the one before it.
local load0, save0 = load, save
local nextKey, heldKey, held
local function heldLoad(key)
  if key == heldKey then return false, unpack(held, 3, held.n) end
  return load0(key)
end
local function heldSave(key, ...)
  if key == nextKey then
    heldKey, held = key, {n = select('#', ...) + 1, key, ...}
  else
    heldKey = nil
    save0(key, ...)
  end
end
local out, n = {}, 0
for i = 1, #KEYS do
  local key = KEYS[i]
  nextKey = KEYS[i + 1]
  if key == nextKey or key == heldKey then load, save = heldLoad, heldSave else load, save = load0, save0 end
  out[n + 1], out[n + 2], out[n + 3], out[n + 4], out[n + 5], out[n + 6] = decide(key)
  n = n + 6
  if heldKey and heldKey ~= nextKey then
    save0(unpack(held, 1, held.n))
    heldKey = nil
  end
end
return out
"""


def answers(body: str) -> list[str]:
    """The return statements of a check's own (body is its text, from
    DECIDE_LINE): those of functions defined inside it — helpers, not answers —
    are left out. A nested function runs from its first line to the `end`
    indented as it is."""
    out: list[str] = []
    nested: list[int] = []
    for ln in body.splitlines()[1:]:
        indent, stmt = len(ln) - len(ln.lstrip()), ln.strip()
        if nested and stmt == "end" and indent == nested[-1]:
            nested.pop()
        elif (stmt.startswith(("local function ", "function ")) or "= function(" in stmt) and not stmt.endswith(" end"):
            nested.append(indent)
        elif stmt.startswith("return ") and not nested:
            out.append(stmt)
    return out


def check_part(entry: dict, text: str) -> tuple[str, str]:
    """A check script split at its check on one key: what comes before, and the
    check's lines (from DECIDE_LINE, which they keep, to the end)."""
    at = text.find("\n" + DECIDE_LINE) + 1
    if at == 0 or text.count("\n" + DECIDE_LINE) != 1:
        raise SystemExit(f"lua/{entry['file']} must hold its check on one key in lines from one {DECIDE_LINE!r} to the end")
    return text[:at], text[at:]


def many_variant(entry: dict, text: str) -> dict:
    """The many-key variant of a check script, as a manifest entry plus its source."""
    before, check = check_part(entry, text)
    # The check must answer only through reply (a tail call), so the swap
    # changes every answer's form and none of its values.
    if before.count(REPLY) != 1 or not all(r.startswith("return reply(") for r in answers(check)):
        raise SystemExit(f"lua/{entry['file']}: its check must answer only with `return reply(...)`, reply defined as {REPLY!r}")
    lines = check.removeprefix(DECIDE_LINE).splitlines(keepends=True)
    decide = "local function decide(key)\n" + "".join("  " + ln if ln.strip() else ln for ln in lines) + "end\n"
    head = (
        f"-- Generated by scripts/gen-lua.py from {entry['file']}: do not edit. The same check on\n"
        "-- every key of KEYS, all at one instant; ARGV as there. Reply: six integers per key,\n"
        "-- in KEYS order: the check's reply, its optional sixth element as 0 or 1.\n"
    )
    held = [h in text for h in HOOKS]
    if any(held) and not all(held):
        raise SystemExit(f"lua/{entry['file']}: a script with one of {HOOKS!r} must define both")
    loop = LOOP_HELD if all(held) else LOOP
    stem = entry["file"].removesuffix(".lua")
    return {
        "name": entry["name"] + "Many",
        "file": f"{stem}_many.lua",
        "strategy": entry["strategy"],
        "role": ROLE_MANY,
        "keys": ["state..."],
        "argv": entry["argv"],
        **({"argvOptional": entry["argvOptional"]} if "argvOptional" in entry else {}),
        "source": head + before.replace(REPLY, REPLY_MANY) + decide + loop,
    }


ROLE_ALL = "checkAll"
ALL_FILE = "check_all.lua"
ALL_HEAD = """-- Generated by scripts/gen-lua.py from the check scripts: do not edit.
-- All or nothing: one charge per key of KEYS, each by its strategy's own check
-- (the scripts below, unchanged), in KEYS order and at one instant; a key
-- charged twice sees its first charge. When every charge is allowed they all
-- stay; when any is denied, every key is put back as it was (DUMP before its
-- first charge, RESTORE or DEL after), so the request spends nothing, and no
-- other command sees a part of it.
-- ARGV: now (0 = Redis TIME), then per key: the strategy's name, n, and the n
-- ARGV its check takes after now.
-- Reply: 1 if the charges were applied, else 0; then six integers per key (the
-- check's reply, its optional sixth element as 0 or 1).
local checks = {}
"""
ALL_MAIN = """local now = tonumber(ARGV[1])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local saved, seen = {}, {}
local function restore()
  for i = #saved, 1, -1 do
    local key, ttl, dump = saved[i][1], saved[i][2], saved[i][3]
    if ttl == -2 or not dump then
      redis.call('DEL', key)
    else
      redis.call('RESTORE', key, math.max(ttl, 0), dump, 'REPLACE')
    end
  end
end
local out, n, applied, a = {0}, 1, 1, 2
for i = 1, #KEYS do
  local key, check, argc = KEYS[i], checks[ARGV[a]], tonumber(ARGV[a + 1])
  if not check or not argc then return redis.error_reply('checkAll: charge ' .. i .. ' names no check script') end
  local args = {now}
  for j = 1, argc do args[j + 1] = ARGV[a + 1 + j] end
  a = a + 2 + argc
  if not seen[key] then
    seen[key] = true
    saved[#saved + 1] = {key, redis.call('PTTL', key), redis.call('DUMP', key)}
  end
  -- A check that fails (an error, not a denial) fails the request, and
  -- every key is put back first: no part of it stays.
  local ok, r = pcall(check, {key}, args)
  if ok and type(r) == 'table' and r.err then ok, r = false, r.err end
  if not ok then
    restore()
    return redis.error_reply('checkAll: charge ' .. i .. ': ' .. tostring(r))
  end
  if r[1] ~= 1 then applied = 0 end
  out[n + 1], out[n + 2], out[n + 3], out[n + 4], out[n + 5], out[n + 6] = r[1], r[2], r[3], r[4], r[5], r[6] or 0
  n = n + 6
end
if applied == 0 then restore() end
out[1] = applied
return out
"""


def all_variant(checks: list[tuple[dict, str]]) -> dict:
    """The all-or-nothing script over every check script, as a manifest entry plus its source."""
    parts = [ALL_HEAD]
    for entry, text in checks:
        check_part(entry, text)
        # The check runs as it is, with KEYS and ARGV its own parameters.
        parts.append(f"checks[{json.dumps(entry['strategy'])}] = function(KEYS, ARGV)\n{text}end\n")
    parts.append(ALL_MAIN)
    return {
        "name": "checkAll",
        "file": ALL_FILE,
        "strategy": "",
        "role": ROLE_ALL,
        "keys": ["state..."],
        "argv": ["now", "charges..."],
        "source": "".join(parts),
    }


def main() -> None:
    here = pathlib.Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=str(here), help="tree to write into")
    out = pathlib.Path(ap.parse_args().root)
    src = here / "lua"
    manifest = json.loads((src / "manifest.json").read_text())
    (out / "lua").mkdir(parents=True, exist_ok=True)
    derived = {}
    checks = []
    for s in manifest["scripts"]:
        if s["role"] == "check":
            text = (src / s["file"]).read_text()
            checks.append((s, text))
            many = many_variant(s, text)
            (out / "lua" / many["file"]).write_text(many.pop("source"))
            derived[many["name"]] = many
    every = all_variant(checks)
    (out / "lua" / every["file"]).write_text(every.pop("source"))
    derived[every["name"]] = every
    manifest["scripts"] = [s for s in manifest["scripts"] if s["role"] not in (ROLE_MANY, ROLE_ALL)]
    manifest["scripts"] += derived.values()
    generated = (ROLE_MANY, ROLE_ALL)
    for s in manifest["scripts"]:
        body = (out / "lua" / s["file"]).read_bytes() if s["role"] in generated else (src / s["file"]).read_bytes()
        s["sha256"] = hashlib.sha256(body).hexdigest()
        s["sha1"] = hashlib.sha1(body).hexdigest()
    text = json.dumps(manifest, indent=2) + "\n"
    (out / "lua" / "manifest.json").write_text(text)
    for copy in COPIES:
        dst = out / copy
        if dst.exists():
            shutil.rmtree(dst)
        dst.mkdir(parents=True)
        for s in manifest["scripts"]:
            shutil.copyfile((out / "lua" if s["role"] in generated else src) / s["file"], dst / s["file"])
        (dst / "manifest.json").write_text(text)


if __name__ == "__main__":
    main()
