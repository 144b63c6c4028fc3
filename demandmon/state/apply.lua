-- Apply one batch of events for one (source, partition) shard, atomically.
-- Exactly-once effect: a partition-offset guard skips anything already applied, and a
-- per-shard set of event ids drops duplicates. Every incident is stored whole; each event
-- retracts the incident's old contribution to the counters and adds its new one, so
-- reclassification, regrades and out-of-order arrival never count anything twice.
--
-- Redis does not roll a script back when it fails half-way, so every write is deferred
-- until the whole batch has been computed: a script error leaves the shard untouched.
--
-- KEYS[1]  shard key prefix, e.g. "dm:{live:3}:" (one hash tag: one Redis Cluster slot)
-- ARGV[1]  wall clock, ms            ARGV[2] retention horizon, ms
-- ARGV[3]  the offset the worker believes this shard has applied through (-2: unknown).
--          If the shard holds less, Redis lost writes (an older copy, a lagging replica):
--          nothing is applied and the reply is {-1, offset held}, so the worker rewinds.
-- ARGV[4]  batch: JSON array of entries in offset order, laid out as
--          demandmon/state/record.py's EventEntry (read here as e[E_TYPE] ...) and
--          RejectEntry (e[E_OFFSET], e[E_IS_EVENT] 0, e[R_REASON])
-- ARGV[5]  most incidents to prune in this call
-- ARGV[6]  the source's watermark across all its partitions as last recorded, ms (-1:
--          none). Lateness and retention follow the source's watermark, not the shard's:
--          a partition that has seen few events must not accept what the source left
--          behind long ago.
-- Reply    {applied, duplicate, skipped, orphaned, offset before, offset after,
--           {offsets rejected as too_late, still owed a dead letter}, {reason, n, ...},
--           this shard's watermark, the watermark retention followed}
-- An empty batch only prunes: the worker sends one to a shard whose source has moved on
-- elsewhere, so that what the source's watermark has left behind leaves here too.
-- Too-late events are decided here (the watermark lives here), so their offsets are kept
-- in the shard's 'late' hash until the worker has dead-lettered them: a crash in between
-- re-reads them, and the skip path reports them again.
--
-- Constants (targets, category, grade, reason, counter codes C_*, meta fields M_*, entry
-- positions E_*) come from a prelude generated from schemas/vocabulary.py and
-- demandmon/state/record.py (demandmon/state/lua.py). The legend of the record, written
-- once (record.INCIDENT_KEYS and RESOURCE_KEYS say the same):
--   incident (hash inc, JSON per incident id)
--     c    created, ms                    b    BCU
--     cl   caller class (p public, q partner)
--     cp   category if public             cq   category if partner
--     ct   time of the latest classification
--     g    grade (absent: UNKNOWN_GRADE)  gt   time of the latest grade
--     dep  1 once a resource is assigned  fa   first arrival, ms
--     r    resources: id -> {a assigned, c cleared, n officers}
--     lt   latest event time              x    1 once closed or cancelled
--     sd   s136 detained                  sa   s136 arrived at the place of safety
--     sh   s136 handover
--   sorted sets: open:, wait: (open, not attended), att: (open, attended) by creation;
--   long: (handovers that waited over target) by handover time.
--   counters: bucket fields C_*|bcu[|category or grade]; gauges (NOW) the same.
local base = KEYS[1]
local now = tonumber(ARGV[1])
local retention = tonumber(ARGV[2])
local expect_offset = tonumber(ARGV[3])
local batch = cjson.decode(ARGV[4])
local prune_limit = tonumber(ARGV[5])
local source_wm = tonumber(ARGV[6] or '-1')

local META, INC, AGE, SEEN = base .. 'meta', base .. 'inc', base .. 'age', base .. 'seen'
local ALL, NOW, HOURS, DAYS = base .. 'all', base .. 'now', base .. 'hours', base .. 'days'
local LATE = base .. 'late'

local function int(x) return string.format('%d', x) end

-- Bucket versions, so that the exporter reads again only the buckets that moved
-- (demandmon/exporter/cache.py): 'bv' maps 'h:<hour>' / 'd:<day>' to the token of the
-- call that last wrote that bucket (a field per bucket that exists), and '#' to a count
-- of the calls that stamped any; 'bd' maps 'd:<day>' to the token of the last call that
-- wrote or deleted any bucket of that day, hours or the day (a field per day bucket that
-- exists). A token is Redis's clock (s, us; the worker's, ms, for a user that may not
-- call TIME) and the count, so none repeats, even after a rollback (an older copy of the
-- data, written on).
local BV, BD, BV_COUNT = base .. 'bv', base .. 'bd', '#'
local token = nil
local function stamp()  -- this call's token, made once
  if token == nil then
    local t = redis.pcall('TIME')
    local clock
    if t.err then  -- a user not allowed TIME (an ACL from before): the worker's clock
      clock = int(now) .. 'ms'
    else
      clock = t[1] .. string.format('%06d', tonumber(t[2]))
    end
    token = clock .. '.' .. redis.call('HINCRBY', BV, BV_COUNT, 1)
  end
  return token
end
local function day_of(suffix)  -- 'h:<hour>' or 'd:<day>' -> 'd:<its day>'
  local start = tonumber(string.sub(suffix, 3))
  return 'd:' .. int(start - start % 86400)
end

local wm = tonumber(redis.call('HGET', META, M_WATERMARK) or '-1')   -- this shard's
local horizon_wm = math.max(wm, source_wm)                      -- what lateness follows
local last_offset = tonumber(redis.call('HGET', META, M_OFFSET) or '-1')
if expect_offset >= 0 and last_offset < expect_offset then
  return {-1, last_offset}
end
local late_owed = redis.call('HLEN', LATE) > 0

local cache, dirty = {}, {}
local deltas = {}      -- counter key -> field -> delta
local gauges = {}      -- field -> delta, on NOW
local buckets = {}     -- hour bucket key -> {hour start, day start}, new in this call
local seen_new = {}    -- event ids first applied in this call: {ts, id}
local members = {}     -- zset moves, in order: {old key, new key, score, id}
local late = {}        -- offsets owed a too-late dead letter: new ones and unpaid ones
local late_new = {}    -- offsets rejected as too late in this call
local counts = {applied = 0, duplicate = 0, skipped = 0}
local orphaned = 0
local first_created, last_created = nil, nil  -- creation times seen in this call
local rejected = {}

-- Redis calls cost more than their work here: the batch's incidents and event ids are
-- read in one call each (prefetch, below), and written in one call each at the end.
local stored = {}      -- incident id -> its JSON as read (false: none), not yet decoded
local known = {}       -- event id -> true when already applied before this call

local function load(id)
  local st = cache[id]
  if st == nil then
    local raw = stored[id]
    if raw == nil then raw = redis.call('HGET', INC, id) end
    if raw then st = cjson.decode(raw) else st = {} end
    cache[id] = st
  end
  return st
end

-- Many arguments to one command, in chunks that Lua's C stack takes (unpack's limit).
local CHUNK = 4000
local function call_chunked(cmd, key, args)
  for i = 1, #args, CHUNK do
    redis.call(cmd, key, unpack(args, i, math.min(i + CHUNK - 1, #args)))
  end
end

local function prefetch()
  local ids, eids, wanted = {}, {}, {}
  for _, e in ipairs(batch) do
    if e[E_OFFSET] > last_offset and e[E_IS_EVENT] ~= REJECTED then
      local id = e[E_INCIDENT_ID]
      if not wanted[id] then wanted[id] = true; table.insert(ids, id) end
      table.insert(eids, e[E_EVENT_ID])
    end
  end
  for i = 1, #ids, CHUNK do
    local last = math.min(i + CHUNK - 1, #ids)
    local raws = redis.call('HMGET', INC, unpack(ids, i, last))
    for j = i, last do stored[ids[j]] = raws[j - i + 1] end
  end
  for i = 1, #eids, CHUNK do
    local last = math.min(i + CHUNK - 1, #eids)
    local scores = redis.call('ZMSCORE', SEEN, unpack(eids, i, last))
    for j = i, last do
      if scores[j - i + 1] then known[eids[j]] = true end
    end
  end
end

local function category(st)
  local cat
  if st.cl == 'p' then cat = st.cp else cat = st.cq end
  if cat == nil or cat == '' then return NOT_RCRP end
  return cat
end

-- What one incident adds to the counters: bucket fields, gauge fields, zset memberships.
local function contribution(st)
  if st.c == nil then return nil end
  local b, n = {}, {}
  local bcu, cat, g = st.b, category(st), st.g or UNKNOWN_GRADE
  local target = TARGET_MS[g]
  b[C_INCIDENTS .. '|' .. bcu .. '|' .. cat] = 1
  if st.dep then b[C_DEPLOYED .. '|' .. bcu .. '|' .. cat] = 1 end
  b[C_GRADED .. '|' .. bcu .. '|' .. g] = 1
  if st.fa and target and st.fa - st.c <= target then
    b[C_ATTENDED_WITHIN_TARGET .. '|' .. bcu .. '|' .. g] = 1
  end
  local officer_ms = 0
  if st.r then
    for _, r in pairs(st.r) do
      if r.a and r.c and r.n and r.c > r.a then officer_ms = officer_ms + (r.c - r.a) * r.n end
    end
  end
  if officer_ms > 0 then b[C_OFFICER_MS .. '|' .. bcu .. '|' .. cat] = officer_ms end
  local long_key, long_at = nil, nil
  if st.sd then
    b[C_S136_DETENTIONS .. '|' .. bcu] = 1
    -- s136 officer time: every unit's time on the incident, whenever the detention came.
    if officer_ms > 0 then b[C_S136_OFFICER_MS .. '|' .. bcu] = officer_ms end
    if st.sh then
      if st.sh > st.sd then b[C_S136_DETENTION_MS .. '|' .. bcu] = st.sh - st.sd end
    else
      n[C_IN_CUSTODY .. '|' .. bcu] = 1
    end
    if st.sa and st.sh then
      local wait = st.sh - st.sa
      b[C_S136_HANDOVERS .. '|' .. bcu] = 1
      if wait > 0 then b[C_S136_HANDOVER_WAIT_MS .. '|' .. bcu] = wait end
      if wait > S136_TARGET_MS then
        b[C_S136_HANDOVERS_OVER_TARGET .. '|' .. bcu] = 1
        long_key, long_at = base .. 'long:' .. bcu, st.sh
      end
    end
  end
  local open_key, wait_key, att_key = nil, nil, nil
  if not st.x then
    n[C_OPEN .. '|' .. bcu .. '|' .. g] = 1
    open_key = base .. 'open:' .. bcu .. ':' .. g
    if target then
      if st.fa == nil then
        wait_key = base .. 'wait:' .. bcu .. ':' .. g
      else
        att_key = base .. 'att:' .. bcu .. ':' .. g
      end
    end
  end
  return {b = b, n = n, open = open_key, wait = wait_key, att = att_key, long = long_key,
          long_at = long_at}
end

local function add(key, field, v)
  local t = deltas[key]
  if t == nil then t = {}; deltas[key] = t end
  t[field] = (t[field] or 0) + v
end

local function bucket_keys(created)
  local hour = math.floor(created / 3600000) * 3600
  local day = math.floor(created / 86400000) * 86400
  local hk, dk = base .. 'h:' .. int(hour), base .. 'd:' .. int(day)
  if not buckets[hk] then buckets[hk] = {hour, day} end
  return hk, dk
end

local function shift(id, created, con, sign)
  if con == nil then return end
  local hk, dk = bucket_keys(created)
  for f, v in pairs(con.b) do
    add(hk, f, sign * v); add(dk, f, sign * v); add(ALL, f, sign * v)
  end
  for f, v in pairs(con.n) do gauges[f] = (gauges[f] or 0) + sign * v end
end

local function move_member(id, old_key, new_key, score)
  if old_key == new_key then return end
  table.insert(members, {old_key, new_key, score, id})
end

local function set_code(st, ts, cp, cq)
  if st.ct == nil or ts >= st.ct then st.ct = ts; st.cp = cp; st.cq = cq end
end

local function set_grade(st, ts, g)
  if st.gt == nil or ts >= st.gt then st.gt = ts; st.g = g end
end

local function resource(st, rid)
  if st.r == nil then st.r = {} end
  local r = st.r[rid]
  if r == nil then r = {}; st.r[rid] = r end
  return r
end

local function merge(st, e)
  local kind, ts = e[E_TYPE], e[E_OCCURRED_MS]
  if st.lt == nil or ts > st.lt then st.lt = ts end
  if kind == 'created' then
    if st.c == nil then
      st.c = ts; st.b = e[E_BCU]
      if first_created == nil or ts < first_created then first_created = ts end
      if last_created == nil or ts > last_created then last_created = ts end
      if e[E_CALLER] == PUBLIC_CALLER then st.cl = 'p' else st.cl = 'q' end
    end
    set_code(st, ts, e[E_CATEGORY_PUBLIC], e[E_CATEGORY_PARTNER])
    if e[E_GRADE] ~= '' then set_grade(st, ts, e[E_GRADE]) end
  elseif kind == 'classified' then set_code(st, ts, e[E_CATEGORY_PUBLIC], e[E_CATEGORY_PARTNER])
  elseif kind == 'graded' then set_grade(st, ts, e[E_GRADE])
  elseif kind == 'resource_assigned' then
    st.dep = 1
    local r = resource(st, e[E_RESOURCE_ID])
    if r.a == nil or ts <= r.a then r.a = ts; r.n = e[E_OFFICERS] end
  elseif kind == 'resource_arrived' then
    if st.fa == nil or ts < st.fa then st.fa = ts end
  elseif kind == 'resource_cleared' then
    local r = resource(st, e[E_RESOURCE_ID])
    if r.c == nil or ts > r.c then r.c = ts end
  elseif kind == 's136_detained' then
    if st.sd == nil or ts < st.sd then st.sd = ts end
  elseif kind == 's136_arrived_pos' then
    if st.sa == nil or ts < st.sa then st.sa = ts end
  elseif kind == 's136_handover' then
    if st.sh == nil or ts < st.sh then st.sh = ts end
  elseif kind == 'closed' or kind == 'cancelled' then st.x = 1
  end
end

local function reject(reason) rejected[reason] = (rejected[reason] or 0) + 1 end

-- An incident's counters move once per call, not once per event: its contribution when
-- this call first touched it is kept, and settled against its latest one at the end
-- (the sums are the same; the work is per incident, not per event).
local before = {}      -- id -> contribution when first touched here (false: none)

local function settle(id)
  local first = before[id]
  if first == nil then return end
  local st = cache[id]
  local old, new = first or nil, contribution(st)
  if st.c ~= nil then
    shift(id, st.c, old, -1)
    shift(id, st.c, new, 1)
    move_member(id, old and old.open, new and new.open, st.c)
    move_member(id, old and old.wait, new and new.wait, st.c)
    move_member(id, old and old.att, new and new.att, st.c)
    -- Scored by the handover time, which an earlier handover event can move.
    local old_long, new_long = old and old.long, new and new.long
    if old_long ~= new_long or (old and old.long_at) ~= (new and new.long_at) then
      table.insert(members, {old_long, new_long, new and new.long_at, id})
    end
  end
  before[id] = nil
end

-- An incident the source's watermark has already left behind, touched by a new event:
-- it leaves first (as the retention sweep would have done), and the event starts afresh.
local function drop_if_past(id, st)
  if horizon_wm < 0 or next(st) == nil or (st.c or st.lt) >= horizon_wm - retention then
    return st
  end
  settle(id)  -- what this call did to it so far counts first, then it leaves
  if st.c == nil then
    orphaned = orphaned + 1
  else
    local con = contribution(st)
    for f, v in pairs(con.n) do gauges[f] = (gauges[f] or 0) - v end
    for _, key in ipairs({con.open or false, con.wait or false, con.att or false,
                          con.long or false}) do
      if key then table.insert(members, {key, false, 0, id}) end
    end
  end
  local fresh = {}
  cache[id] = fresh
  return fresh
end

prefetch()
local max_offset = last_offset
for _, e in ipairs(batch) do
  local offset = e[E_OFFSET]
  if offset <= last_offset then
    counts.skipped = counts.skipped + 1
    if late_owed and redis.call('HEXISTS', LATE, int(offset)) == 1 then
      table.insert(late, offset)
    end
  else
    if offset > max_offset then max_offset = offset end
    if e[E_IS_EVENT] == REJECTED then
      reject(e[R_REASON])
    else
      local eid, id, ts = e[E_EVENT_ID], e[E_INCIDENT_ID], e[E_OCCURRED_MS]
      -- Lateness first: event ids are remembered only within the horizon, so a repeat
      -- of an event the watermark has left behind is too late, like any other.
      if horizon_wm >= 0 and ts < horizon_wm - retention then
        reject(TOO_LATE)
        table.insert(late, offset)
        table.insert(late_new, offset)
      elseif seen_new[eid] or known[eid] then
        counts.duplicate = counts.duplicate + 1
      else
        seen_new[eid] = ts
        local st = drop_if_past(id, load(id))
        if before[id] == nil then before[id] = contribution(st) or false end
        merge(st, e)
        dirty[id] = true
        if ts > wm then wm = ts end
        if ts > horizon_wm then horizon_wm = ts end
        counts.applied = counts.applied + 1
      end
    end
  end
end

for id, _ in pairs(dirty) do settle(id) end

-- Retention: incidents, buckets and event ids older than the horizon go. Computed here,
-- written below with everything else.
local pruned = {}      -- id -> contribution (nil for an orphan)
local horizon = nil
if horizon_wm >= 0 then
  horizon = horizon_wm - retention
  local candidates = {}
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', AGE, '-inf', '(' .. int(horizon), 'LIMIT', 0, prune_limit)) do
    if not dirty[id] then table.insert(candidates, id) end
  end
  -- Incidents touched in this call have their age in the cache, not yet in AGE.
  for id, _ in pairs(dirty) do
    local st = cache[id]
    if (st.c or st.lt) < horizon then table.insert(candidates, id) end
  end
  for _, id in ipairs(candidates) do
    if pruned[id] == nil then
      local st = load(id)
      if st.c == nil then
        orphaned = orphaned + 1
        pruned[id] = false
      else
        local con = contribution(st)
        for f, v in pairs(con.n) do gauges[f] = (gauges[f] or 0) - v end
        pruned[id] = con
      end
    end
  end
end

-- Writes from here on.
local inc_args, age_args, seen_args = {}, {}, {}
for id, _ in pairs(dirty) do
  if pruned[id] == nil then
    local st = cache[id]
    table.insert(inc_args, id); table.insert(inc_args, cjson.encode(st))
    table.insert(age_args, st.c or st.lt); table.insert(age_args, id)
  end
end
call_chunked('HSET', INC, inc_args)
call_chunked('ZADD', AGE, age_args)
for eid, ts in pairs(seen_new) do table.insert(seen_args, ts); table.insert(seen_args, eid) end
call_chunked('ZADD', SEEN, seen_args)
-- Sorted-set moves, in order, reduced to each (key, id)'s last word (a score, or false:
-- removed): the same end state as applying them one by one, in two calls per key.
local final = {}       -- key -> id -> score or false
local function place(key, id, score)
  local t = final[key]
  if t == nil then t = {}; final[key] = t end
  t[id] = score
end
for _, m in ipairs(members) do
  if m[1] then place(m[1], m[4], false) end
  if m[2] then place(m[2], m[4], m[3]) end
end
for id, con in pairs(pruned) do
  if con then
    for _, key in ipairs({con.open or false, con.wait or false, con.att or false,
                          con.long or false}) do
      if key then place(key, id, false) end
    end
  end
end
for key, ids in pairs(final) do
  local gone, scored = {}, {}
  for id, score in pairs(ids) do
    if score then table.insert(scored, score); table.insert(scored, id)
    else table.insert(gone, id) end
  end
  call_chunked('ZREM', key, gone)
  call_chunked('ZADD', key, scored)
end
for hk, hd in pairs(buckets) do
  redis.call('ZADD', HOURS, hd[1], int(hd[1]))
  redis.call('ZADD', DAYS, hd[2], int(hd[2]))
end
local stamped = {}     -- bucket suffix ('h:<hour>', 'd:<day>') -> true, written here
for key, fields in pairs(deltas) do
  for f, v in pairs(fields) do
    if v ~= 0 then
      redis.call('HINCRBY', key, f, int(v))
      if key ~= ALL then stamped[string.sub(key, #base + 1)] = true end
    end
  end
end
if next(stamped) ~= nil then
  -- One token for every bucket this call wrote, and for their days. A shard that has
  -- buckets but no versions yet (written by an older apply script) gets a version for
  -- every bucket it keeps, so that from here on a bucket without one does not exist.
  if redis.call('EXISTS', BV) == 0 then
    for _, h in ipairs(redis.call('ZRANGE', HOURS, 0, -1)) do stamped['h:' .. h] = true end
    for _, d in ipairs(redis.call('ZRANGE', DAYS, 0, -1)) do stamped['d:' .. d] = true end
  end
  local now_token = stamp()
  local args, days = {}, {}
  for suffix, _ in pairs(stamped) do
    table.insert(args, suffix); table.insert(args, now_token)
    days[day_of(suffix)] = true
  end
  call_chunked('HSET', BV, args)
  args = {}
  for day, _ in pairs(days) do table.insert(args, day); table.insert(args, now_token) end
  call_chunked('HSET', BD, args)
end
for f, v in pairs(gauges) do
  if v ~= 0 then redis.call('HINCRBY', NOW, f, int(v)) end
end
local pruned_ids = {}
for id, _ in pairs(pruned) do table.insert(pruned_ids, id) end
call_chunked('HDEL', INC, pruned_ids)
call_chunked('ZREM', AGE, pruned_ids)
if horizon then
  redis.call('ZREMRANGEBYSCORE', SEEN, '-inf', '(' .. int(horizon))
  -- After the deltas, so that a bucket that left the horizon in this call is not revived.
  local horizon_s = math.floor(horizon / 1000)
  -- A bucket deleted loses its version; a day whose bucket is deleted loses its version
  -- (every hour of it is gone by then too), one that keeps its bucket gets a new one.
  local gone, touched, gone_days = {}, {}, {}
  for _, h in ipairs(redis.call('ZRANGEBYSCORE', HOURS, '-inf', '(' .. int(horizon_s - 3600))) do
    redis.call('DEL', base .. 'h:' .. h)
    table.insert(gone, 'h:' .. h)
    touched[day_of('h:' .. h)] = true
  end
  redis.call('ZREMRANGEBYSCORE', HOURS, '-inf', '(' .. int(horizon_s - 3600))
  for _, d in ipairs(redis.call('ZRANGEBYSCORE', DAYS, '-inf', '(' .. int(horizon_s - 86400))) do
    redis.call('DEL', base .. 'd:' .. d)
    table.insert(gone, 'd:' .. d)
    table.insert(gone_days, 'd:' .. d)
    touched['d:' .. d] = nil
  end
  call_chunked('HDEL', BV, gone)
  call_chunked('HDEL', BD, gone_days)
  local restamp = {}
  for day, _ in pairs(touched) do
    if redis.call('HEXISTS', BD, day) == 1 then
      table.insert(restamp, day); table.insert(restamp, stamp())
    end
  end
  call_chunked('HSET', BD, restamp)
  redis.call('ZREMRANGEBYSCORE', DAYS, '-inf', '(' .. int(horizon_s - 86400))
end
for _, offset in ipairs(late_new) do redis.call('HSET', LATE, int(offset), TOO_LATE) end

if #batch > 0 then
  redis.call('HSET', META, M_WATERMARK, int(wm), M_OFFSET, int(max_offset),
             M_LAST_WRITE, int(now))
end
redis.call('HSET', META, M_HORIZON, int(horizon_wm))  -- the watermark retention last followed
if first_created then
  local c0 = tonumber(redis.call('HGET', META, M_FIRST_CREATED) or '-1')
  if c0 < 0 or first_created < c0 then
    redis.call('HSET', META, M_FIRST_CREATED, int(first_created))
  end
  local c1 = tonumber(redis.call('HGET', META, M_LAST_CREATED) or '-1')
  if last_created > c1 then redis.call('HSET', META, M_LAST_CREATED, int(last_created)) end
end
if counts.applied > 0 then redis.call('HINCRBY', META, M_APPLIED, counts.applied) end
if counts.duplicate > 0 then redis.call('HINCRBY', META, M_DUPLICATE, counts.duplicate) end
if orphaned > 0 then redis.call('HINCRBY', META, M_ORPHANED, orphaned) end
local rejected_flat = {}
for reason, n in pairs(rejected) do
  redis.call('HINCRBY', META, M_REJECTED .. reason, n)
  table.insert(rejected_flat, reason)
  table.insert(rejected_flat, n)
end
return {counts.applied, counts.duplicate, counts.skipped, orphaned, last_offset, max_offset,
        late, rejected_flat, wm, horizon_wm}
