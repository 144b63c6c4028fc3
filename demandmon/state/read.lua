-- Read one shard's figures, summing bucket counters server-side. Only what is asked for
-- is read, so a caller that holds part of a shard's figures asks for the rest alone.
-- KEYS[1]  shard key prefix
-- ARGV[1]  JSON {"segments": [[[hour starts], [day starts]], ...],
--                "windows": [[name, n], ...],  -- n ascending: a window is the sum of the
--                                              -- first n segments (nested windows that
--                                              -- end together: each bucket is read once)
--                "by_segment": bool,  -- each segment's own sums, not the windows'
--                "all": bool, "now": bool, "meta": bool,
--                "past": [[bcu, grade, created_before_ms], ...], "oldest": [bcu, ...]}
-- I_GRADE comes from the prelude generated from schemas/vocabulary.py
-- (demandmon/state/lua.py).
-- Returns JSON {"windows": {name: {field: n}}, "now": {...}, "meta": {...},
-- (with "by_segment": "segments": [{field: n}, ...], one per segment, and "windows" holds
-- "all" alone: the caller adds segments up, and the script copies no window),
-- "past": {"bcu|grade": n}, "oldest": {bcu: {"u": created ms of the oldest open I incident
-- not attended, "a": ... attended and not closed, "h": handover ms of the latest s136
-- handover that waited over target}}} (a figure that has no incident is absent; so is a BCU
-- that has none): counters as numbers, or as digit
-- strings from 10^14 on (exact beyond 2^53 is not needed); a part not asked for is absent.
local base = KEYS[1]
local req = cjson.decode(ARGV[1])
local call, tonumber = redis.call, tonumber

local function int(x) return string.format('%d', x) end

local function hash_into(acc, key)
  local flat = call('HGETALL', key)
  for i = 1, #flat, 2 do
    local f = flat[i]
    local n = acc[f]
    -- Lua turns the digit string into a number for the addition, as tonumber does.
    if n then acc[f] = n + flat[i + 1] else acc[f] = tonumber(flat[i + 1]) end
  end
end

-- cjson writes numbers with 14 significant digits: sums (exact integers in Lua's doubles)
-- go out as numbers below 10^14, and as digit strings at or above.
local EXACT = 1e14
local function exact(t)  -- in place
  for k, v in pairs(t) do
    if v >= EXACT or v <= -EXACT then t[k] = int(v) end
  end
  return t
end

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

local out = {windows = {}, past = {}, oldest = {}}
local segments = {}
for s, segment in ipairs(req.segments) do
  local acc = {}
  for _, h in ipairs(segment[1]) do hash_into(acc, base .. 'h:' .. int(h)) end
  for _, d in ipairs(segment[2]) do hash_into(acc, base .. 'd:' .. int(d)) end
  segments[s] = acc
end
if req.by_segment then
  out.segments = {}
  for s, acc in ipairs(segments) do out.segments[s] = exact(acc) end
else
  local acc, added = {}, 0
  for _, w in ipairs(req.windows) do
    while added < w[2] do
      added = added + 1
      for k, v in pairs(segments[added]) do acc[k] = (acc[k] or 0) + v end
    end
    out.windows[w[1]] = exact(copy(acc))
  end
end
if req.all then
  local total = {}
  hash_into(total, base .. 'all')
  out.windows['all'] = exact(total)
end
if req.now then
  local now = {}
  hash_into(now, base .. 'now')
  out.now = exact(now)
end
if req.meta then
  local meta = {}
  local flat = redis.call('HGETALL', base .. 'meta')
  for i = 1, #flat, 2 do meta[flat[i]] = flat[i + 1] end
  out.meta = meta
end
for _, p in ipairs(req.past) do
  local key = base .. 'wait:' .. p[1] .. ':' .. p[2]
  out.past[p[1] .. '|' .. p[2]] = int(redis.call('ZCOUNT', key, '-inf', '(' .. int(p[3])))
end
local function score(key, rank)
  local member = redis.call('ZRANGE', key, rank, rank, 'WITHSCORES')
  if #member == 2 then return member[2] end
  return nil
end
for _, bcu in ipairs(req.oldest) do
  local suffix = bcu .. ':' .. I_GRADE
  local found = {
    u = score(base .. 'wait:' .. suffix, 0),
    a = score(base .. 'att:' .. suffix, 0),
    h = score(base .. 'long:' .. bcu, -1),
  }
  if next(found) ~= nil then out.oldest[bcu] = found end
end
return cjson.encode(out)
