-- Read one shard's figures for a set of windows, summing bucket counters server-side.
-- KEYS[1]  shard key prefix
-- ARGV[1]  JSON {"windows": [[name, [hour starts], [day starts]], ...], "all": true|false,
--                "end_ms": n, "past": [[bcu, grade, created_before_ms], ...],
--                "oldest": [bcu, ...]}
-- I_GRADE comes from the prelude generated from schemas/vocabulary.py
-- (demandmon/state/lua.py).
-- Returns JSON with integer values as strings (exact beyond 2^53 is not needed, but
-- cjson prints numbers with 14 significant digits).
local base = KEYS[1]
local req = cjson.decode(ARGV[1])

local function int(x) return string.format('%d', x) end

local function hash_into(acc, key)
  local flat = redis.call('HGETALL', key)
  for i = 1, #flat, 2 do
    acc[flat[i]] = (acc[flat[i]] or 0) + tonumber(flat[i + 1])
  end
end

local function stringify(t)
  local out = {}
  for k, v in pairs(t) do out[k] = int(v) end
  return out
end

local out = {windows = {}, past = {}, oldest = {}}
for _, w in ipairs(req.windows) do
  local acc = {}
  for _, h in ipairs(w[2]) do hash_into(acc, base .. 'h:' .. int(h)) end
  for _, d in ipairs(w[3]) do hash_into(acc, base .. 'd:' .. int(d)) end
  out.windows[w[1]] = stringify(acc)
end
if req.all then
  local acc = {}
  hash_into(acc, base .. 'all')
  out.windows['all'] = stringify(acc)
end
local now = {}
hash_into(now, base .. 'now')
out.now = stringify(now)
local meta = {}
local flat = redis.call('HGETALL', base .. 'meta')
for i = 1, #flat, 2 do meta[flat[i]] = flat[i + 1] end
out.meta = meta
for _, p in ipairs(req.past) do
  local key = base .. 'wait:' .. p[1] .. ':' .. p[2]
  out.past[p[1] .. '|' .. p[2]] = int(redis.call('ZCOUNT', key, '-inf', '(' .. int(p[3])))
end
for _, bcu in ipairs(req.oldest) do
  local first = redis.call('ZRANGE', base .. 'open:' .. bcu .. ':' .. I_GRADE, 0, 0, 'WITHSCORES')
  if #first == 2 then out.oldest[bcu] = first[2] end
end
return cjson.encode(out)
