-- Sum chosen counters of one shard over groups of hour buckets, server-side, so the
-- expected-demand reader (demandmon/baseline/read.py) gets a few numbers back instead of
-- every bucket.
-- KEYS[1]  shard key prefix
-- ARGV[1]  JSON {"fields": [counter field, ...], "groups": [[hour start, ...], ...]}
-- Returns JSON [[sum of each field, in the order given], ...], one list per group. An
-- hour never written, or already dropped behind the retention horizon, adds nothing.
local base = KEYS[1]
local req = cjson.decode(ARGV[1])
local fields = req.fields
local n = #fields

local out = {}
for g, hours in ipairs(req.groups) do
  local sums = {}
  for i = 1, n do sums[i] = 0 end
  for _, h in ipairs(hours) do
    local values = redis.call('HMGET', base .. 'h:' .. string.format('%d', h), unpack(fields))
    for i = 1, n do
      if values[i] then sums[i] = sums[i] + tonumber(values[i]) end
    end
  end
  out[g] = sums
end
return cjson.encode(out)
