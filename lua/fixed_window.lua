-- ThrottleKit fixedWindow check. KEYS[1] = state key (hash: s = window start, c = count).
-- ARGV: now (0 = Redis TIME), limit, windowMs, cost.
-- Reply: {allowed, limit, remaining, resetAt, retryAfterMs}.
local key = KEYS[1]
local now = tonumber(ARGV[1])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local limit = tonumber(ARGV[2])
local windowMs = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])

local start = math.floor(now / windowMs) * windowMs
local resetAt = start + windowMs
local st = redis.call('HMGET', key, 's', 'c')
local count = 0
if tonumber(st[1]) == start then count = tonumber(st[2]) or 0 end
if count + cost <= limit then
  redis.call('HSET', key, 's', string.format('%.17g', start), 'c', string.format('%.17g', count + cost))
  redis.call('PEXPIRE', key, math.max(1, math.ceil(resetAt - now)))
  return {1, limit, limit - (count + cost), resetAt, 0}
end
return {0, limit, math.max(0, limit - count), resetAt, math.ceil(resetAt - now)}
