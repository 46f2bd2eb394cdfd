-- ThrottleKit slidingWindow state read (read-only, for Peek and Forecast). KEYS[1] = state key.
-- ARGV: now (0 = Redis TIME). Reply: {now, then field, value pairs of the ring}; the Go engine computes the answer.
local key = KEYS[1]
local now = tonumber(ARGV[1])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local out = {now}
-- A key of another type reads as absent: the next check resets it.
local raw = redis.pcall('HGETALL', key)
if raw.err then return {now} end
for i = 1, #raw do out[#out + 1] = raw[i] end
return out
