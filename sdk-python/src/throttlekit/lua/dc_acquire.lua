-- ThrottleKit distributed concurrency: acquire one slot of a fleet-wide
-- ceiling. KEYS[1] = leases (sorted set: lease id scored by its expiry, ms),
-- KEYS[2] = nodes (hash: node id -> "<estimate>:<expiresAt>").
-- ARGV: now (0 = Redis TIME), leaseId, ttlMs, aggregate (median|min), fallbackLimit.
-- Reply: {acquired (1|0), globalLimit, remaining, liveNodes, now}.
-- Expired leases are reclaimed first; the ceiling is the median (or min) of
-- the live nodes' adaptive estimates, or fallbackLimit when none is live.
local now = tonumber(ARGV[1])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local leaseId = ARGV[2]
local ttlMs = tonumber(ARGV[3])
local aggregate = ARGV[4]

redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.17g', now))
local ests = {}
local raw = redis.call('HGETALL', KEYS[2])
for i = 1, #raw, 2 do
  local v = raw[i + 1]
  local sep = string.find(v, ':', 1, true)
  local est = sep and tonumber(string.sub(v, 1, sep - 1))
  local exp = sep and tonumber(string.sub(v, sep + 1))
  if est and exp and exp > now then
    ests[#ests + 1] = est
  else
    redis.call('HDEL', KEYS[2], raw[i])
  end
end
local L = tonumber(ARGV[5])
if #ests > 0 then
  table.sort(ests)
  local n = #ests
  if aggregate == 'min' then
    L = ests[1]
  elseif n % 2 == 1 then
    L = ests[(n + 1) / 2]
  else
    L = (ests[n / 2] + ests[n / 2 + 1]) / 2
  end
end
L = math.floor(L)
local inflight = redis.call('ZCARD', KEYS[1])
if inflight >= L then
  return {0, L, 0, #ests, now}
end
redis.call('ZADD', KEYS[1], string.format('%.17g', now + ttlMs), leaseId)
redis.call('PEXPIRE', KEYS[1], ttlMs)
return {1, L, L - inflight - 1, #ests, now}
