-- ThrottleKit slidingWindowLog check. KEYS[1] = state key: a sorted set of
-- admitted units, score = timestamp, member "<now>-<n>" (n = count+1 .. count+cost).
-- ARGV: now (0 = Redis TIME), windowMs, limit, cost[, ttlFloorMs].
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
local function int(x)
  if x ~= x then return 0 elseif x > MAXINT then return MAXINT elseif x < -MAXINT then return -MAXINT end
  return x
end
local function reply(reset, allowed, lim, remaining, resetAt, retry)
  if reset then return {allowed, int(lim), int(remaining), int(resetAt), int(retry), 1} end
  return {allowed, int(lim), int(remaining), int(resetAt), int(retry)}
end
local windowMs = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])

-- The check on one key: KEYS[1] here, at the instant above. The many-key variant
-- (scripts/gen-lua.py) makes these lines decide(key) and runs it for each key
-- of KEYS; here, at the top level, they build no function (a function built
-- on every run costs Redis time).
local key = KEYS[1]
local reset = false
local function scoreAt(i)
  local e = redis.call('ZRANGE', key, i, i, 'WITHSCORES')
  return tonumber(e[2])
end
local dropped = redis.pcall('ZREMRANGEBYSCORE', key, '-inf', string.format('%.17g', now - windowMs))
if type(dropped) == 'table' then redis.call('DEL', key); reset = true end
local count = redis.call('ZCARD', key)
-- An entry stamped further ahead than SKEW would never age out.
if count > 0 and not (scoreAt(-1) <= now + SKEW) then
  redis.call('DEL', key)
  reset = true
  count = 0
end
if count + cost <= limit then
  local nowText = string.format('%.17g', now)
  for n = count + 1, count + cost do
    redis.call('ZADD', key, nowText, nowText .. '-' .. string.format('%d', n))
  end
  redis.call('PEXPIRE', key, math.max(ttlFloor, math.ceil(windowMs)))
  return reply(reset, 1, limit, math.max(0, limit - (count + cost)), math.ceil(scoreAt(0) + windowMs), 0)
end
local first = now
if count > 0 then first = scoreAt(0) end
local retry
if count == 0 then
  retry = math.ceil(windowMs)
else
  local k = math.min(count, math.max(1, count + cost - limit))
  retry = math.max(1, math.ceil(scoreAt(k - 1) + windowMs - now))
end
return reply(reset, 0, limit, math.max(0, limit - count), math.ceil(first + windowMs), retry)
