-- ThrottleKit fixedWindow state read (read-only, for Peek and Forecast). KEYS[1] = state key.
-- ARGV: now (0 = Redis TIME). Reply: {now, window start, count (text or nil)}; the Go engine computes the answer.
local key = KEYS[1]
local now = tonumber(ARGV[1])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- A key of another type reads as absent: the next check resets it.
local st = redis.pcall('HMGET', key, 's', 'c')
if st.err then return {now} end
return {now, st[1], st[2]}
