-- ThrottleKit slidingWindowLog check. KEYS[1] = state key: a sorted set of
-- admitted units, score = timestamp, member "<now>-<n>" (n = count+1 .. count+cost).
-- ARGV: now (0 = Redis TIME), windowMs, limit, cost.
-- Reply: {allowed, limit, remaining, resetAt, retryAfterMs}.
local key = KEYS[1]
local now = tonumber(ARGV[1])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local windowMs = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])

redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%.17g', now - windowMs))
local count = redis.call('ZCARD', key)
local function scoreAt(i)
  local e = redis.call('ZRANGE', key, i, i, 'WITHSCORES')
  return tonumber(e[2])
end
if count + cost <= limit then
  local nowText = string.format('%.17g', now)
  for n = count + 1, count + cost do
    redis.call('ZADD', key, nowText, nowText .. '-' .. string.format('%d', n))
  end
  redis.call('PEXPIRE', key, math.max(1, math.ceil(windowMs)))
  return {1, limit, math.max(0, limit - (count + cost)), math.ceil(scoreAt(0) + windowMs), 0}
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
return {0, limit, math.max(0, limit - count), math.ceil(first + windowMs), retry}
