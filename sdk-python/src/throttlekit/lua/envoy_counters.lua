-- ThrottleKit's drop-in for envoyproxy/ratelimit: one request's descriptor
-- counters at that service's Redis keys (<prefix><domain>_<key>_<value>_…
-- _<window start>), each INCRBY its hits with an EXPIRE, as it counts them.
-- KEYS = the counters. ARGV[1] = allOrNothing (1: when an enforcing counter
-- would pass its limit, none is charged — our default; 0: every counter is
-- charged, as envoyproxy/ratelimit does), then per counter: hits, limit,
-- enforcing (1|0), expireSeconds.
-- Reply: {applied (1|0), count per counter} — the counts after the hits
-- when applied, the counts found when refused.
local allOrNothing = ARGV[1] == '1'
local out = {0}
if allOrNothing then
  local refused = false
  for i = 1, #KEYS do
    local base = 2 + (i - 1) * 4
    local count = tonumber(redis.call('GET', KEYS[i])) or 0
    out[i + 1] = count
    if ARGV[base + 2] == '1' and count + tonumber(ARGV[base]) > tonumber(ARGV[base + 1]) then
      refused = true
    end
  end
  if refused then
    return out
  end
end
out[1] = 1
for i = 1, #KEYS do
  local base = 2 + (i - 1) * 4
  out[i + 1] = redis.call('INCRBY', KEYS[i], ARGV[base])
  redis.call('EXPIRE', KEYS[i], ARGV[base + 3])
end
return out
