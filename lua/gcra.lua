-- ThrottleKit gcra check. KEYS[1] = state key (a string holding tat).
-- ARGV: now (0 = Redis TIME), periodMs, limit, burst, cost.
-- Reply: {allowed, limit(=burst), remaining, resetAt, retryAfterMs}.
-- Arithmetic is done in the order of the ThrottleKit semantics: the Go
-- engine mirrors it operation for operation and replies must match bit for bit.
local key = KEYS[1]
local now = tonumber(ARGV[1])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local periodMs = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local burst = tonumber(ARGV[4])
local cost = tonumber(ARGV[5])

local T = periodMs / limit
local tau = T * burst
local inc = T * cost
local tat = tonumber(redis.call('GET', key)) or now
if tat < now then tat = now end
local newTat = tat + inc
local allowAt = newTat - tau
if now < allowAt then
  return {0, burst, math.max(0, math.floor((tau - (tat - now)) / T)), math.ceil(tat), math.ceil(allowAt - now)}
end
local ttl = math.max(1, math.ceil(newTat - now))
redis.call('SET', key, string.format('%.17g', newTat), 'PX', ttl)
return {1, burst, math.max(0, math.floor((tau - (newTat - now)) / T)), math.ceil(newTat), 0}
