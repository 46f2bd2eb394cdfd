-- ThrottleKit quota check: a limit that resets on the calendar.
-- KEYS[1] = state key (hash: s = period start, c = count in it).
-- ARGV: now (0 = Redis TIME), limit, cost, mode, periodMs, anchor, offsetMs,
-- weekStartsOn[, ttlFloorMs[, boundaries...]] — the ecosystem's layout, so a
-- client of any language on the same key shares its budget. mode: 1 =
-- calendar month, 2 = calendar week, 3 = calendar day (each at the fixed UTC
-- offset offsetMs; weeks start on weekStartsOn, 0 = Sunday), 4 = every periodMs
-- from anchor, 5 = the periods of a time zone: the caller sends, ascending,
-- the boundaries (local midnights by the zone's rules) around its own clock,
-- and the period holding now — the Redis clock's, when now = 0 — is decided;
-- an instant outside them is refused, never guessed. ttlFloorMs 1 is none.
-- Reply: {allowed, limit, remaining, resetAt, retryAfterMs}.
local now = tonumber(ARGV[1])
-- ttlFloorMs (optional) raises every TTL written to at least that many ms.
-- State kept past its TTL decides exactly as the absent state it decays
-- to, so a floor never changes a decision; a caller whose instants are its
-- own (a test clock, a replay) passes one that real time cannot outrun.
local ttlFloor = 1
if ARGV[9] then ttlFloor = math.max(1, math.min(86400000, tonumber(ARGV[9]) or 1)) end
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
local cost = tonumber(ARGV[3])
local mode = tonumber(ARGV[4])
local periodMs = tonumber(ARGV[5])
local anchor = tonumber(ARGV[6])
local off = tonumber(ARGV[7])
local weekStartsOn = tonumber(ARGV[8])

-- The period [start, resetAt) now falls in. Calendar periods are whole local
-- days shifted back by the offset; months come from integer civil-date
-- arithmetic on the proleptic Gregorian calendar (floor division, so
-- instants before 1970 work too).
local D = 86400000
local start, resetAt
if mode == 5 then
  for i = 10, #ARGV - 1 do
    local a, b = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
    if a <= now and now < b then start, resetAt = a, b break end
  end
  if not start then
    return redis.error_reply('quota: the instant ' .. string.format('%d', now) .. ' is outside the periods sent')
  end
elseif mode == 4 then
  start = anchor + math.floor((now - anchor) / periodMs) * periodMs
  resetAt = start + periodMs
else
  local day = math.floor((now + off) / D)
  if mode == 3 then
    start, resetAt = day, day + 1
  elseif mode == 2 then
    local first = day - ((((day + 4) % 7) - weekStartsOn) % 7) -- 1970-01-01 was a Thursday
    start, resetAt = first, first + 7
  else
    -- civil-from-days for (year, month), then days-from-civil of two 1sts.
    local z = day + 719468
    local era = math.floor(z / 146097)
    local doe = z - era * 146097
    local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
    local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
    local mp = math.floor((5 * doy + 2) / 153)
    local y, m = yoe + era * 400, mp + 3
    if m > 12 then y, m = y + 1, m - 12 end
    local function first(yy, mm)
      if mm <= 2 then yy = yy - 1 end
      local e = math.floor(yy / 400)
      local ye = yy - e * 400
      local dy = math.floor((153 * ((mm + 9) % 12) + 2) / 5)
      return e * 146097 + ye * 365 + math.floor(ye / 4) - math.floor(ye / 100) + dy - 719468
    end
    start = first(y, m)
    if m == 12 then resetAt = first(y + 1, 1) else resetAt = first(y, m + 1) end
  end
  start, resetAt = start * D - off, resetAt * D - off
end
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
    if not (s and c and s > -math.huge and s <= now + SKEW and c >= 0 and c < math.huge) then
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
-- The check on one key: KEYS[1] here, in the period above. The many-key variant
-- (scripts/gen-lua.py) makes these lines decide(key) and runs it for each key
-- of KEYS; here, at the top level, they build no function (a function built
-- on every run costs Redis time).
local key = KEYS[1]
local reset, s, c = load(key)
local count = 0
if s == start then count = c end
if count + cost <= limit then
  save(key, math.max(ttlFloor, resetAt - now), start, count + cost)
  return reply(reset, 1, limit, limit - (count + cost), resetAt, 0)
end
return reply(reset, 0, limit, math.max(0, limit - count), resetAt, resetAt - now)
