-- ThrottleKit's drop-in for envoyproxy/ratelimit: one request's descriptor
-- counters at that service's Redis keys (<prefix><domain>_<key>_<value>_…
-- _<window start>), each INCRBY its hits with an EXPIRE, as it counts them.
-- KEYS = the counters. ARGV[1] = allOrNothing (1: when an enforcing counter
-- would pass its limit, none is charged — our default; 0: every counter is
-- charged, as envoyproxy/ratelimit does; 2: take back hits charged by a
-- request refused on another Redis — a live counter loses them, never
-- below 0, and keeps its expiry), then per counter: hits, limit,
-- enforcing (1|0), expireSeconds.
-- Reply: {applied (1|0), count per counter} — the counts after the hits
-- when applied (or taken back), the counts found when refused.
if ARGV[1] == '2' then
  local out = {1}
  for i = 1, #KEYS do
    local count = tonumber(redis.call('GET', KEYS[i])) or 0
    local back = math.min(count, tonumber(ARGV[2 + (i - 1) * 4]))
    if back > 0 then
      count = redis.call('DECRBY', KEYS[i], back)
    end
    out[i + 1] = count
  end
  return out
end
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
