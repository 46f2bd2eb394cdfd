-- ThrottleKit region pool (federatedFairEscrow): one budget per window shared
-- between regions. KEYS[1] = the pool, a HASH: ws = the window's start,
-- w:<region> = the region's weight, g:<region> = its grant (only grows within
-- a window), n:<region> = the node serving the region.
-- ARGV: now (0 = Redis TIME), windowMs, limit, region, node, weight, want.
-- Reply: {granted, windowStart, now, free, inherited}.
-- The grant rule: roll the window if it ended (a request from before the
-- pool's window is decided in it); a node taking a region over from another
-- inherits the region's grant as spent; record the weight; when want exceeds
-- the grant G, with othersHold = sum over the other regions j of
-- max(G_j, floor(W_j * limit / sum W)), G = max(0, min(want, max(G, limit - othersHold))).
local now = tonumber(ARGV[1])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local win = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local region = ARGV[4]
local want = tonumber(ARGV[7])

local ws = now - (now % win)
local cur = tonumber(redis.call('HGET', KEYS[1], 'ws'))
if cur == nil or ws > cur then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'ws', string.format('%.17g', ws))
else
  ws = cur
end

local g = tonumber(redis.call('HGET', KEYS[1], 'g:' .. region)) or 0
local inherited = 0
local owner = redis.call('HGET', KEYS[1], 'n:' .. region)
if owner and owner ~= ARGV[5] then
  inherited = g
end
redis.call('HSET', KEYS[1], 'n:' .. region, ARGV[5], 'w:' .. region, ARGV[6])

local weights, grants = {}, {}
local raw = redis.call('HGETALL', KEYS[1])
for i = 1, #raw, 2 do
  local kind, name = string.sub(raw[i], 1, 2), string.sub(raw[i], 3)
  if kind == 'w:' then
    weights[name] = tonumber(raw[i + 1])
  elseif kind == 'g:' then
    grants[name] = tonumber(raw[i + 1])
  end
end
if want > g then
  local total = 0
  for _, w in pairs(weights) do
    total = total + w
  end
  local othersHold = 0
  for r, w in pairs(weights) do
    if r ~= region then
      othersHold = othersHold + math.max(grants[r] or 0, math.floor(w * limit / total))
    end
  end
  g = math.max(0, math.min(want, math.max(g, limit - othersHold)))
  grants[region] = g
  redis.call('HSET', KEYS[1], 'g:' .. region, string.format('%.17g', g))
end
local free = limit
for _, v in pairs(grants) do
  free = free - v
end
redis.call('PEXPIRE', KEYS[1], math.max(1, ws + win - now))
return {g, ws, now, free, inherited}
