-- ThrottleKit tokenBudget debit (post-hoc metering). KEYS[1] = state key
-- (hash: s = window start, c = tokens served). The debit that crosses the
-- budget is admitted and counted in full; later debits in the window are refused.
-- ARGV: now (0 = Redis TIME), budget, windowMs, tokens.
-- Reply: {allowed, limit(=budget), remaining, resetAt, retryAfterMs}.
local key = KEYS[1]
local now = tonumber(ARGV[1])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local budget = tonumber(ARGV[2])
local windowMs = tonumber(ARGV[3])
local tokens = tonumber(ARGV[4])

local start = math.floor(now / windowMs) * windowMs
local resetAt = start + windowMs
local st = redis.call('HMGET', key, 's', 'c')
local served = 0
if tonumber(st[1]) == start then served = tonumber(st[2]) or 0 end
if served >= budget then
  return {0, budget, 0, resetAt, resetAt - now}
end
served = served + tokens
redis.call('HSET', key, 's', string.format('%.17g', start), 'c', string.format('%.17g', served))
redis.call('PEXPIRE', key, math.max(1, math.ceil(resetAt - now)))
return {1, budget, math.max(0, budget - served), resetAt, 0}
