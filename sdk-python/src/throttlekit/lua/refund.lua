-- ThrottleKit refund: gives back one allowed charge, for a client that made
-- several keys' charges in turn (keys no one script may touch together, as
-- on a cluster) and must undo the earlier ones when a later one is denied.
-- KEYS[1] = the charge's state key.
-- ARGV: now (0 = Redis TIME: the refund's instant), the strategy's name, then
-- the ARGV its check was sent with (the charge's instant, options, cost...);
-- a quota's is its period start and cost.
-- Reply: {1} if the state changed, else {0}.
-- The engine's Refund, in the state layout of each check script: counts
-- (fixedWindow, slidingWindow, slidingWindowLog, quota) lose the charge while they
-- still hold it; tokenBucket and gcra get it back less the refill since the
-- charge, so no refund gives back more than the charge still holds. The
-- key's TTL is kept: a refund never extends it. State the check scripts
-- could not have written is left for the next check to replace.
local now = tonumber(ARGV[1])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local kind = ARGV[2]
local C = {}
for i = 3, #ARGV do C[#C + 1] = tonumber(ARGV[i]) end
local key = KEYS[1]
local function num(s)
  if type(s) ~= 'string' or string.find(s, '[^%d%.eE+-]') then return nil end
  local x = tonumber(s)
  if x and x > -math.huge and x < math.huge then return x end
  return nil
end
local function fmt(x) return string.format('%.17g', x) end

if kind == 'fixedWindow' then
  -- C: at, limit, windowMs, cost
  local at, windowMs, cost = C[1], C[3], C[4]
  local st = redis.pcall('HMGET', key, 's', 'c')
  if st.err then return {0} end
  local s, c = num(st[1]), num(st[2])
  if not (s and c) or s ~= math.floor(at / windowMs) * windowMs or c <= 0 then return {0} end
  redis.call('HSET', key, 'c', fmt(math.max(0, c - cost)))
  return {1}
elseif kind == 'slidingWindow' then
  -- C: at, windowMs, limit, cost, buckets
  local at, windowMs, cost, S = C[1], C[2], C[4], C[5]
  local w = windowMs / S
  local tick = math.floor(at / w)
  local field = string.format('%d', tick % (S + 1))
  local v = redis.pcall('HGET', key, field)
  if type(v) ~= 'string' then return {0} end
  local sep = string.find(v, ':', 1, true)
  local t = sep and num(string.sub(v, 1, sep - 1))
  local n = sep and num(string.sub(v, sep + 1))
  if t ~= tick or not n or n <= 0 then return {0} end
  redis.call('HSET', key, field, fmt(tick) .. ':' .. fmt(math.max(0, n - cost)))
  return {1}
elseif kind == 'slidingWindowLog' then
  -- C: at, windowMs, limit, cost. Members are "<at>-<n>", n counting from
  -- the key's size when written: the highest n of the instant go, so the
  -- next check's names (from the size) cannot meet one that stays.
  local at, cost = C[1], C[4]
  local members = redis.pcall('ZRANGEBYSCORE', key, fmt(at), fmt(at))
  if members.err or #members == 0 then return {0} end
  local byN = {}
  for i = 1, #members do
    local n = tonumber(string.match(members[i], '%-(%d+)$'))
    byN[#byN + 1] = {n or 0, members[i]}
  end
  table.sort(byN, function(a, b) return a[1] > b[1] end)
  for i = 1, math.min(cost, #byN) do redis.call('ZREM', key, byN[i][2]) end
  return {1}
elseif kind == 'quota' then
  -- C: the charge's period start, then cost. A calendar period may come
  -- from a time zone's rules, which only the caller has: it sends the start
  -- its check's period had.
  local start, cost = C[1], C[2]
  local st = redis.pcall('HMGET', key, 's', 'c')
  if st.err then return {0} end
  local s, c = num(st[1]), num(st[2])
  if not (s and c) or s ~= start or c <= 0 then return {0} end
  redis.call('HSET', key, 'c', fmt(math.max(0, c - cost)))
  return {1}
elseif kind == 'tokenBucket' then
  -- C: at, capacity, refillPerSec, cost
  local at, capacity, perMs, cost = C[1], C[2], C[3] / 1000, C[4]
  local back = cost - (now - at) * perMs
  if not (back > 0) then return {0} end
  local st = redis.pcall('HMGET', key, 't', 'l')
  if st.err then return {0} end
  local tokens, last = num(st[1]), num(st[2])
  if not (tokens and last) then return {0} end
  tokens = math.min(capacity, tokens + math.max(0, at - last) * perMs)
  redis.call('HSET', key, 't', fmt(math.min(capacity, tokens + back)), 'l', fmt(math.max(last, at)))
  return {1}
elseif kind == 'gcra' then
  -- C: at, periodMs, limit, burst, cost
  local at, T, cost = C[1], C[2] / C[3], C[5]
  local back = T * cost - (now - at)
  if not (back > 0) then return {0} end
  local raw = redis.pcall('GET', key)
  local tat = type(raw) == 'string' and num(raw)
  if not tat then return {0} end
  local ttl = redis.call('PTTL', key)
  if ttl > 0 then
    redis.call('SET', key, fmt(tat - back), 'PX', ttl)
  else
    redis.call('SET', key, fmt(tat - back), 'KEEPTTL')
  end
  return {1}
end
return redis.error_reply('refund: no strategy named ' .. tostring(kind))
