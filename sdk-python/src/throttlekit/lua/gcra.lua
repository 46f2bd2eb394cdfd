-- ThrottleKit gcra check. KEYS[1] = state key (a string holding tat).
-- ARGV: now (0 = Redis TIME), periodMs, limit, burst, cost[, ttlFloorMs].
-- Reply: {allowed, limit(=burst), remaining, resetAt, retryAfterMs}.
-- Arithmetic is done in the order of the ThrottleKit semantics: the Go
-- engine mirrors it operation for operation and replies must match bit for bit.
local now = tonumber(ARGV[1])
-- ttlFloorMs (optional) raises every TTL written to at least that many ms.
-- State kept past its TTL decides exactly as the absent state it decays
-- to, so a floor never changes a decision; a caller whose instants are its
-- own (a test clock, a replay) passes one that real time cannot outrun.
local ttlFloor = 1
if ARGV[6] then ttlFloor = math.max(1, math.min(86400000, tonumber(ARGV[6]) or 1)) end
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
local periodMs = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local burst = tonumber(ARGV[4])
local cost = tonumber(ARGV[5])

local T = periodMs / limit
local tau = T * burst
local inc = T * cost
-- load reads key's state: whether corrupt state was deleted, then the state
-- (nils when there is none). save writes it with its TTL; load must read back
-- exactly what save was given — the many-key variant relies on it to keep a
-- key that repeats in KEYS in the run between its checks.
local function load(key)
  local raw = redis.pcall('GET', key)
  if type(raw) == 'table' then
    redis.call('DEL', key)
    return true, nil
  elseif raw then
    local tat = num(raw)
    if not (tat and tat > -math.huge and tat <= now + tau + SKEW) then
      redis.call('DEL', key)
      return true, nil
    end
    return false, tat
  end
  return false, nil
end
local function save(key, ttl, tat)
  redis.call('SET', key, string.format('%.17g', tat), 'PX', ttl)
end
-- The check on one key: KEYS[1] here, at the instant above. The many-key variant
-- (scripts/gen-lua.py) makes these lines decide(key) and runs it for each key
-- of KEYS; here, at the top level, they build no function (a function built
-- on every run costs Redis time).
local key = KEYS[1]
local reset, tat = load(key)
tat = tat or now
if tat < now then tat = now end
local newTat = tat + inc
local allowAt = newTat - tau
if now < allowAt then
  return reply(reset, 0, burst, math.max(0, math.floor((tau - (tat - now)) / T)), math.ceil(tat), math.ceil(allowAt - now))
end
local ttl = math.max(ttlFloor, math.ceil(newTat - now))
save(key, ttl, newTat)
return reply(reset, 1, burst, math.max(0, math.floor((tau - (newTat - now)) / T)), math.ceil(newTat), 0)
