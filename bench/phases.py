"""Where a batch's time goes in the worker's own code, measured in-process without Faust.

Feeds the same events, in the same batches (``batch_max`` in send order, split per shard),
through the worker's real functions: ``consumed`` (Faust event -> Consumed), ``plan_batch``
(decode + validate + classify; decode timed on its own too), ``script_args`` (the JSON
encode of each shard's entries), ``StateStore.apply`` (one pipelined round trip running
apply.lua) and the whole ``BatchApplier.apply`` (the above plus metric updates). What the
real worker spends beyond their sum is Faust and aiokafka.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import redis.asyncio
from events import BenchEvents
from measure import SOURCE

from agents.batch import SOURCE_HEADER, Consumed, plan_batch
from agents.classify import load_mapping
from agents.incident_events import BatchApplier, consumed
from agents.metrics import WorkerMetrics
from demandmon.settings import Settings
from demandmon.state.store import StateStore, StoreConfig, script_args
from schemas import decode_event

PHASES = (
    "consumed() conversion",
    "decode + validate (decode_event)",
    "plan_batch (decode, validate, classify)",
    "JSON encode of shard batches",
    "StateStore.apply (Redis round trip)",
    "BatchApplier.apply (all of ours)",
)


@dataclass
class PhaseTimes:
    events: int = 0
    batches: int = 0
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))

    def us_per_event(self, phase: str) -> float:
        return self.seconds[phase] / self.events * 1e6


class _NoDeadletters:
    """The bench events are all valid; a dead letter here would be a benchmark bug."""

    async def send(self, **_: Any) -> None:
        raise RuntimeError("unexpected dead letter")


def _faust_like(topic: str, partition: int, offset: int, key: bytes, value: bytes) -> Any:
    # Only the attributes consumed() reads; the timestamp is "now", as for a live message.
    message = SimpleNamespace(
        topic=topic,
        partition=partition,
        offset=offset,
        key=key,
        value=value,
        headers=[(SOURCE_HEADER, SOURCE.encode())],
        timestamp=time.time(),
    )
    return SimpleNamespace(message=message)


async def _run(
    events: BenchEvents, partitions: list[int], settings: Settings, redis_url: str
) -> PhaseTimes:
    client = redis.asyncio.Redis.from_url(redis_url)
    prefix = f"p{uuid.uuid4().hex[:8]}"
    config = StoreConfig(prefix, settings.retention_s, settings.max_future_s)
    metrics = WorkerMetrics.create()
    mapping = load_mapping()
    applier = BatchApplier(settings, StateStore(client, config), mapping, metrics, _NoDeadletters())
    # A second store on its own prefix: timing the round trip alone must not meet the
    # offset guard of the prefix the whole apply writes to.
    store = StateStore(
        client, StoreConfig(prefix + "s", settings.retention_s, settings.max_future_s)
    )
    out = PhaseTimes(events=len(events))
    offsets: dict[int, int] = defaultdict(int)
    secs = out.seconds
    tick = time.perf_counter
    for lo in range(0, len(events), settings.batch_max):
        batch = []
        for i in range(lo, min(lo + settings.batch_max, len(events))):
            p = partitions[i]
            batch.append(_faust_like("bench", p, offsets[p], events.keys[i], events.values[i]))
            offsets[p] += 1
        t0 = tick()
        messages: list[Consumed] = [consumed(e) for e in batch]
        t1 = tick()
        for m in messages:
            decode_event(m.value or b"", settings.max_message_bytes)
        t2 = tick()
        plan = plan_batch(messages, mapping, settings.max_message_bytes)
        t3 = tick()
        for (source, _), entries in plan.shards.items():
            script_args(config, source, entries, 0)
        t4 = tick()
        await store.apply(plan, int(time.time() * 1000))
        t5 = tick()
        await applier.apply(messages)
        t6 = tick()
        took_s = (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5)
        for phase, took in zip(PHASES, took_s, strict=True):
            secs[phase] += took
        out.batches += 1
    for name in [k async for k in client.scan_iter(match=f"{prefix}*", count=1000)]:
        await client.unlink(name)
    await client.aclose()
    return out


def measure_phases(
    events: BenchEvents, partitions: list[int], settings: Settings, redis_url: str
) -> PhaseTimes:
    return asyncio.run(_run(events, partitions, settings, redis_url))


def phase_table(times: PhaseTimes, worker_cpu_us: float, script_s: float, n: int) -> str:
    """Per-event microseconds of each phase, against the real worker's time per event.

    The worker awaits each batch's Redis round trip before taking the next (concurrency
    1), so its wall time is its own CPU plus the script's run time in Redis.
    """
    lines = [f"in-process phases ({times.events:,} events, {times.batches} batches):"]
    for phase in PHASES:
        lines.append(f"  {phase:42} {times.us_per_event(phase):7.1f} us/event")
    script = script_s / n * 1e6
    ours = times.us_per_event(PHASES[0]) + times.us_per_event(PHASES[-1]) - script
    real = worker_cpu_us
    lines += [
        f"  {'apply.lua run time in Redis (real run)':42} {script:7.1f} us/event",
        f"  {'our Python (consumed + apply - script)':42} {ours:7.1f} us/event",
        f"  {'real worker CPU after start-up':42} {real:7.1f} us/event",
        f"  {'rest: Faust, aiokafka, asyncio':42} {real - ours:7.1f} us/event",
    ]
    return "\n".join(lines)
