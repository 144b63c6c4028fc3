"""The two bare limits the worker is measured against, on the same events: a bare aiokafka
consume-and-decode loop (raw A), and the least Redis apply possible per event (raw B)."""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from dataclasses import dataclass

import redis
from aiokafka import AIOKafkaConsumer
from events import BenchEvents
from measure import SOURCE

from demandmon.state import keys

# Raw limit B: the least a Redis apply can do per event (dedupe, count), nothing else.
RAW_LUA = """
local n = 0
for i = 1, #ARGV, 2 do
  if redis.call('ZADD', KEYS[1] .. 'seen', 'NX', ARGV[i], ARGV[i + 1]) == 1 then n = n + 1 end
end
redis.call('HINCRBY', KEYS[1] .. 'meta', 'applied', n)
return n
"""


@dataclass
class RawRun:
    total_s: float  # from start, including connecting / joining the group
    steady_s: float  # from the first record (or batch) to the last

    def rate(self, n: int) -> float:
        return n / self.steady_s if self.steady_s > 0 else float("nan")


async def _consume(bootstrap: str, topic: str, group: str, n: int) -> RawRun:
    started = time.monotonic()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    first = 0.0
    count = 0
    try:
        while count < n:
            batches = await consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                if records and not first:
                    first = time.monotonic()
                for record in records:
                    json.loads(record.value)
                count += len(records)
        end = time.monotonic()
    finally:
        await consumer.stop()
    return RawRun(end - started, end - first)


def raw_consume(bootstrap: str, topic: str, group: str, n: int) -> RawRun:
    """Raw limit A: a bare aiokafka consume-and-decode loop over the same topic."""
    return asyncio.run(_consume(bootstrap, topic, group, n))


def raw_redis(
    client: redis.Redis, prefix: str, events: BenchEvents, partitions: list[int], batch: int
) -> RawRun:
    """Raw limit B: the worker's round-trip shape (a batch, one script call per shard, one
    pipelined round trip) with the least possible script."""
    script = client.register_script(RAW_LUA)
    started = time.monotonic()
    applied = 0
    for lo in range(0, len(events), batch):
        shards: dict[int, list[int | str]] = defaultdict(list)
        for i in range(lo, min(lo + batch, len(events))):
            shards[partitions[i]] += (events.occurred_ms[i], events.event_ids[i])
        pipe = client.pipeline(transaction=False)
        for p, args in shards.items():
            script(keys=[keys.shard(prefix, SOURCE, p)], args=args, client=pipe)
        applied += sum(int(r) for r in pipe.execute())
    elapsed = time.monotonic() - started
    if applied != len(events):
        raise RuntimeError(f"raw Redis loop applied {applied} of {len(events)}")
    return RawRun(elapsed, elapsed)
