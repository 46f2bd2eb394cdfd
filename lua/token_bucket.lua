-- ThrottleKit tokenBucket check. KEYS[1] = state key (hash: t = tokens, l = last).
-- ARGV: now (0 = Redis TIME), capacity, refillPerSec, cost.
-- Reply: {allowed, limit(=capacity), remaining, resetAt, retryAfterMs}.
local key = KEYS[1]
local now = tonumber(ARGV[1])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local capacity = tonumber(ARGV[2])
local refillPerSec = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])

local perMs = refillPerSec / 1000
local st = redis.call('HMGET', key, 't', 'l')
local tokens = tonumber(st[1]) or capacity
local last = tonumber(st[2]) or now
local elapsed = math.max(0, now - last)
tokens = math.min(capacity, tokens + elapsed * perMs)
local ttl = math.max(1, math.ceil(capacity / perMs))
if tokens >= cost then
  local newTokens = tokens - cost
  redis.call('HSET', key, 't', string.format('%.17g', newTokens), 'l', string.format('%.17g', now))
  redis.call('PEXPIRE', key, ttl)
  return {1, capacity, math.max(0, math.floor(newTokens)), now + math.ceil((capacity - newTokens) / perMs), 0}
end
return {0, capacity, math.max(0, math.floor(tokens)), now + math.ceil((capacity - tokens) / perMs),
  math.ceil((cost - tokens) / perMs)}
