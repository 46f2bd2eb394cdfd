-- ThrottleKit slidingWindow check. KEYS[1] = state key: a hash whose field is
-- the decimal slot number (tick mod (buckets+1)) and whose value is
-- "<tick>:<count>"; a slot owned by another tick counts 0.
-- ARGV: now (0 = Redis TIME), windowMs, limit, cost, buckets[, ttlFloorMs].
-- Reply: {allowed, limit, remaining, resetAt, retryAfterMs}.
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
local windowMs = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local S = tonumber(ARGV[5])

local slots = S + 1
-- The check on one key: KEYS[1] here, at the instant above. The many-key variant
-- (scripts/gen-lua.py) makes these lines decide(key) and runs it for each key
-- of KEYS; here, at the top level, they build no function (a function built
-- on every run costs Redis time).
local key = KEYS[1]
local reset = false
local ring = {}
local raw = redis.pcall('HGETALL', key)
if raw.err then
  redis.call('DEL', key)
  reset = true
  raw = {}
end
-- ring maps a slot's field to {tick, count}; every slot must parse.
for i = 1, #raw, 2 do
  -- A slot's field is its index as the script writes it: digits, no sign
  -- or leading zero.
  local slot = string.find(raw[i], '^%d+$') and tonumber(raw[i])
  if slot and string.format('%d', slot) ~= raw[i] then slot = nil end
  local v = raw[i + 1]
  local sep = string.find(v, ':', 1, true)
  local tick = sep and num(string.sub(v, 1, sep - 1))
  local n = sep and num(string.sub(v, sep + 1))
  if not (slot and slot >= 0 and slot < slots and slot == math.floor(slot)
      and tick and tick > -math.huge and tick < math.huge and n and n >= 0 and n < math.huge) then
    redis.call('DEL', key)
    reset = true
    ring = {}
    break
  end
  ring[raw[i]] = {tick, n}
end
local function count(tick)
  local v = ring[string.format('%d', tick % slots)]
  if not v or v[1] ~= tick then return 0 end
  return v[2]
end

local w = windowMs / S
local c = math.floor(now / w)
local elapsed = math.max(0, now - c * w)
local weight = math.min(1, math.max(0, (w - elapsed) / w))
local full = 0
for tick = c - S + 1, c do full = full + count(tick) end
local oldest = count(c - S)
local estimate = full + oldest * weight
local projected = estimate + cost
local resetAt = math.ceil((c + 1) * w + windowMs)
if projected <= limit then
  redis.call('HSET', key, string.format('%d', c % slots),
    string.format('%.17g', c) .. ':' .. string.format('%.17g', count(c) + cost))
  redis.call('PEXPIRE', key, math.max(ttlFloor, math.ceil(windowMs + w)))
  return reply(reset, 1, limit, math.max(0, math.floor(limit - projected)), resetAt, 0)
end
local D = projected - limit
local retry
if oldest > 0 and D <= oldest * weight then
  retry = math.ceil(D * w / oldest)
else
  retry = math.ceil((c + 1) * w - now)
end
return reply(reset, 0, limit, math.max(0, math.floor(limit - estimate)), resetAt, math.max(1, retry))
