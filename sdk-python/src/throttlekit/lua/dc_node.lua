-- ThrottleKit distributed concurrency: a node's heartbeat. KEYS[1] = nodes
-- (hash: node id -> "<estimate>:<expiresAt>"). ARGV: now (0 = Redis TIME),
-- nodeId, estimate, expiryMs. Reply: {now, live nodes}.
local now = tonumber(ARGV[1])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local expiryMs = tonumber(ARGV[4])
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3] .. ':' .. string.format('%.17g', now + expiryMs))
redis.call('PEXPIRE', KEYS[1], expiryMs)
local live = 0
local raw = redis.call('HGETALL', KEYS[1])
for i = 2, #raw, 2 do
  local sep = string.find(raw[i], ':', 1, true)
  if sep and tonumber(string.sub(raw[i], sep + 1)) > now then live = live + 1 end
end
return {now, live}
