-- ThrottleKit fixedWindow check. KEYS[1] = state key (hash: s = window start, c = count).
-- ARGV: now (0 = Redis TIME), limit, windowMs, cost[, ttlFloorMs].
-- Reply: {allowed, limit, remaining, resetAt, retryAfterMs}.
local now = tonumber(ARGV[1])
-- ttlFloorMs (optional) raises every TTL written to at least that many ms.
-- State kept past its TTL decides exactly as the absent state it decays
-- to, so a floor never changes a decision; a caller whose instants are its
-- own (a test clock, a replay) passes one that real time cannot outrun.
local ttlFloor = 1
if ARGV[5] then ttlFloor = math.max(1, math.min(86400000, tonumber(ARGV[5]) or 1)) end
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- State that this script could not have written (another type, text that is
-- not a number, a non-finite value, an instant more than SKEW ms ahead) is
-- deleted and the request decided on a fresh key; the reply then carries a
-- sixth element, 1. Reply integers saturate at +-2^53 (exact in a double).
local SKEW = 60000
local MAXINT = 9007199254740992
-- Numbers in state are read only in the plain decimal form the scripts
-- write (digits, sign, point, exponent: no spaces, hex, inf or nan), the
-- form every client's parser reads alike. Anything else is corrupt.
local function num(s)
  if type(s) ~= 'string' or string.find(s, '[^%d%.eE+-]') then return nil end
  return tonumber(s)
end
local function int(x)
  if x ~= x then return 0 elseif x > MAXINT then return MAXINT elseif x < -MAXINT then return -MAXINT end
  return x
end
local function reply(reset, allowed, lim, remaining, resetAt, retry)
  if reset then return {allowed, int(lim), int(remaining), int(resetAt), int(retry), 1} end
  return {allowed, int(lim), int(remaining), int(resetAt), int(retry)}
end
local limit = tonumber(ARGV[2])
local windowMs = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])

local start = math.floor(now / windowMs) * windowMs
local resetAt = start + windowMs
-- load reads key's state: whether corrupt state was deleted, then the state
-- (nils when there is none). save writes it with its TTL; load must read back
-- exactly what save was given — the many-key variant relies on it to keep a
-- key that repeats in KEYS in the run between its checks.
local function load(key)
  local st = redis.pcall('HMGET', key, 's', 'c')
  if st.err then
    redis.call('DEL', key)
    return true, nil, nil
  elseif st[1] or st[2] then
    local s, c = num(st[1]), num(st[2])
    if not (s and c and s > -math.huge and s < math.huge and c >= 0 and c < math.huge) then
      redis.call('DEL', key)
      return true, nil, nil
    end
    return false, s, c
  end
  return false, nil, nil
end
local function save(key, ttl, s, c)
  redis.call('HSET', key, 's', string.format('%.17g', s), 'c', string.format('%.17g', c))
  redis.call('PEXPIRE', key, ttl)
end
-- The check on one key: KEYS[1] here, at the instant above. The many-key variant
-- (scripts/gen-lua.py) makes these lines decide(key) and runs it for each key
-- of KEYS; here, at the top level, they build no function (a function built
-- on every run costs Redis time).
local key = KEYS[1]
local reset, s, c = load(key)
local count = 0
if s == start then count = c end
if count + cost <= limit then
  save(key, math.max(ttlFloor, math.ceil(resetAt - now)), start, count + cost)
  return reply(reset, 1, limit, limit - (count + cost), resetAt, 0)
end
return reply(reset, 0, limit, math.max(0, limit - count), resetAt, math.ceil(resetAt - now))
