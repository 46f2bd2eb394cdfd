-- ThrottleKit distributed concurrency: renew leases. KEYS[1] = leases.
-- ARGV: now (0 = Redis TIME), ttlMs, then lease ids.
-- Reply: {{live ids}, {reclaimed ids}}: a lease already expired or released
-- is reclaimed and is not revived.
local now = tonumber(ARGV[1])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local ttlMs = tonumber(ARGV[2])
local live, reclaimed = {}, {}
local expiry = string.format('%.17g', now + ttlMs)
for i = 3, #ARGV do
  local score = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[i]))
  if score and score > now then
    redis.call('ZADD', KEYS[1], 'XX', expiry, ARGV[i])
    live[#live + 1] = ARGV[i]
  else
    redis.call('ZREM', KEYS[1], ARGV[i])
    reclaimed[#reclaimed + 1] = ARGV[i]
  end
end
if #live > 0 then redis.call('PEXPIRE', KEYS[1], ttlMs) end
return {live, reclaimed}
