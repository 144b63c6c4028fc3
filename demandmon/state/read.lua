-- Read one shard's figures, summing bucket counters server-side. Only what is asked for
-- is read, so a caller that holds part of a shard's figures asks for the rest alone.
-- KEYS[1]  shard key prefix
-- ARGV[1]  JSON {"segments": [[[hour starts], [day starts]], ...],
--                "windows": [[name, n], ...],  -- n ascending: a window is the sum of the
--                                              -- first n segments (nested windows that
--                                              -- end together: each bucket is read once)
--                "by_bucket": {"names": ['h:<start>' or 'd:<start>', ...], "day": [k, ...],
--                              "days": ['d:<start>', ...]},  -- instead of segments and
--                     -- windows: each bucket's own sums; "day": its day, the k-th of days
--                "tokens": [version, ...],  -- the version the caller holds of each
--                     -- bucket ('?': none; '*': read while its day had the version
--                     -- held), and "held_days": [version, ...] of each day ('?': none)
--                "flat": bool,  -- bucket sums, "all" and "now" as HGETALL answers them
--                "all": bool, "now": bool, "meta": bool,
--                "past": [[bcu, grade, created_before_ms], ...], "oldest": [bcu, ...]}
-- I_GRADE comes from the prelude generated from schemas/vocabulary.py
-- (demandmon/state/lua.py).
-- Returns JSON {"windows": {name: {field: n}}, "now": {...}, "meta": {...},
-- (with "by_bucket": "buckets": [[i, version, {field: n}], ...] for the i-th bucket (from
-- 1) not held or whose version is not the one held: '' and no sums for a bucket that is
-- not there, '*' for one not held before, false when the shard has no versions at all
-- (written by an older apply script: every bucket is read); "days": {day: version} for
-- the days whose version is not the one held ('': not there); "windows" holds "all"
-- alone),
-- "past": {"bcu|grade": n}, "oldest": {bcu: {"u": created ms of the oldest open I incident
-- not attended, "a": ... attended and not closed, "h": handover ms of the latest s136
-- handover that waited over target}}} (a figure that has no incident is absent; so is a BCU
-- that has none): counters as numbers, or as digit
-- strings from 10^14 on (exact beyond 2^53 is not needed), or with "flat" as Redis holds
-- them ([field, "n", field, "n", ...]); a part not asked for is absent.
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

-- One hash: as HGETALL answers it (with "flat"), or as numbers (exact, as above).
local function read_hash(key)
  if req.flat then return call('HGETALL', key) end
  local sums = {}
  hash_into(sums, key)
  return exact(sums)
end

local out = {windows = {}, past = {}, oldest = {}}
if req.by_bucket then
  -- A bucket not held is read ('*': its own version is not looked up, so it stands
  -- while its day's does); one held is read again when its day's version (apply.lua's
  -- 'bd') is not the one held and its own ('bv') is not either. A day not there has no
  -- bucket.
  local names, day_of, day_names = req.by_bucket.names, req.by_bucket.day, req.by_bucket.days
  local function bucket(name) return read_hash(base .. name) end
  local held, held_days = req.tokens or {}, req.held_days or {}
  out.buckets = {}
  if call('EXISTS', base .. 'bv') == 0 then  -- no versions at all: every bucket is read
    for i, name in ipairs(names) do table.insert(out.buckets, {i, false, bucket(name)}) end
  else
    local days, moved = {}, {}
    if #day_names > 0 then days = call('HMGET', base .. 'bd', unpack(day_names)) end
    out.days = {}
    for k, day in ipairs(day_names) do
      local version = days[k] or ''
      days[k] = version
      if version ~= held_days[k] then out.days[day] = version; moved[k] = true end
    end
    local ask, at = {}, {}
    for i, name in ipairs(names) do
      local k = day_of[i]
      if days[k] == '' then
        if held[i] ~= '' then table.insert(out.buckets, {i, '', {}}) end
      elseif held[i] == nil or held[i] == '?' then  -- not held: good while its day stands
        table.insert(out.buckets, {i, '*', bucket(name)})
      elseif moved[k] then
        table.insert(ask, name); table.insert(at, i)
      end
    end
    if #ask > 0 then
      local versions = call('HMGET', base .. 'bv', unpack(ask))
      for j, name in ipairs(ask) do
        local i, version = at[j], versions[j] or ''
        if version ~= held[i] then
          if version == '' then table.insert(out.buckets, {i, '', {}})
          else table.insert(out.buckets, {i, version, bucket(name)}) end
        end
      end
    end
  end
else
  local segments = {}
  for s, segment in ipairs(req.segments) do
    local acc = {}
    for _, h in ipairs(segment[1]) do hash_into(acc, base .. 'h:' .. int(h)) end
    for _, d in ipairs(segment[2]) do hash_into(acc, base .. 'd:' .. int(d)) end
    segments[s] = acc
  end
  local acc, added = {}, 0
  for _, w in ipairs(req.windows) do
    while added < w[2] do
      added = added + 1
      for k, v in pairs(segments[added]) do acc[k] = (acc[k] or 0) + v end
    end
    out.windows[w[1]] = exact(copy(acc))
  end
end
if req.all then out.windows['all'] = read_hash(base .. 'all') end
if req.now then out.now = read_hash(base .. 'now') end
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
