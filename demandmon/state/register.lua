-- Register a replay source, atomically with the cap on the number of sources.
-- The only key it touches is the registry, so the replay's Redis user needs no other.
--
-- KEYS[1]  the registry set, <prefix>:registry (live is always a source, never stored)
-- ARGV[1]  the source name
-- ARGV[2]  most sources in all, live included (settings.max_sources)
-- Reply    {status, sources}: status 1 registered now, 0 already registered, -1 refused
--          (registering would make more than ARGV[2]); sources counts live and the
--          registered replays after the call
local registry, name, most = KEYS[1], ARGV[1], tonumber(ARGV[2])
local count = 1 + redis.call('SCARD', registry)
if redis.call('SISMEMBER', registry, name) == 1 then
  return {0, count}
end
if count + 1 > most then
  return {-1, count}
end
redis.call('SADD', registry, name)
return {1, count + 1}
