"""Where a batch's time goes in the worker's own code, measured in-process without Faust.

Feeds the same events, in the same batches (``batch_max`` in send order, split per shard),
through the worker's real functions: ``consumed`` (Faust event -> Consumed), ``plan_batch``
(decode + validate + classify; decode also timed alone), ``script_args`` (the JSON encode
of each shard's entries), ``StateStore.apply`` (one pipelined round trip running apply.lua;
Redis's own script time read from INFO commandstats) and ``BatchApplier.process`` with the
store stubbed out (``plan_batch`` plus the metric updates). What the real worker spends
beyond the sum is Faust, aiokafka and asyncio.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import redis.asyncio
from events import BenchEvents
from measure import SOURCE

from agents.applier import BatchApplier
from agents.batch import Consumed, Rejection, plan_batch
from agents.classify import load_mapping
from agents.deadletter_sender import DeadLetterSender
from agents.kafka_records import consumed
from agents.metrics import WorkerMetrics
from demandmon.settings import Settings
from demandmon.state.record import Entry, entry_offset
from demandmon.state.store import (
    ApplyResult,
    Shard,
    ShardResult,
    StateStore,
    StoreConfig,
    script_args,
)
from schemas import decode_event
from schemas.vocabulary import SOURCE_HEADER

PHASES = (
    "consumed() conversion",
    "decode + validate (decode_event)",
    "plan_batch (decode, validate, classify)",
    "JSON encode of shard batches",
    "StateStore.apply (Redis round trip)",
    "BatchApplier.process, Redis stubbed",
)


@dataclass
class PhaseTimes:
    events: int = 0
    batches: int = 0
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))
    script_s: float = 0.0  # Redis's own time in apply.lua during the round trips
    passes: int = 1

    def us_per_event(self, phase: str) -> float:
        return self.seconds[phase] / self.events * 1e6


class _NoStore(StateStore):
    """Stands in for Redis, so BatchApplier.process times plan_batch plus the metrics and
    its own bookkeeping: every entry is applied, nothing else is written."""

    def __init__(self) -> None:  # no client: every method the applier calls is below
        pass

    async def registered_sources(self) -> frozenset[str]:
        return frozenset({SOURCE})

    async def apply(
        self, shards: Mapping[Shard, list[Entry]], now_ms: int, expect: Mapping[Shard, int]
    ) -> ApplyResult:
        return ApplyResult(
            {
                shard: ShardResult(
                    offset_after=max(entry_offset(e) for e in entries), applied=len(entries)
                )
                for shard, entries in shards.items()
            }
        )

    async def save_positions(
        self, positions: Mapping[int, tuple[int, Mapping[str, int]]], watermarks: Mapping[str, int]
    ) -> None:
        return None


class _NoDeadletters(DeadLetterSender):
    """The bench events are all valid; a dead letter here would be a benchmark bug."""

    def __init__(self) -> None:  # no producer: nothing is ever sent
        pass

    async def send(self, rejections: Sequence[Rejection]) -> int:
        raise RuntimeError("unexpected dead letter")


async def _script_usec(client: redis.asyncio.Redis) -> int:
    stats = await client.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{c}", {}).get("usec", 0)) for c in ("evalsha", "eval"))


def _record(topic: str, partition: int, offset: int, key: bytes, value: bytes) -> Any:
    # Only the attributes consumed() reads of an aiokafka ConsumerRecord; the timestamp
    # (ms) is "now", as for a live message.
    return SimpleNamespace(
        topic=topic,
        partition=partition,
        offset=offset,
        key=key,
        value=value,
        headers=[(SOURCE_HEADER, SOURCE.encode())],
        timestamp=int(time.time() * 1000),
    )


def _batches(events: BenchEvents, partitions: list[int], size: int) -> list[list[Any]]:
    offsets: dict[int, int] = defaultdict(int)
    out = []
    for lo in range(0, len(events), size):
        batch = []
        for i in range(lo, min(lo + size, len(events))):
            p = partitions[i]
            batch.append(_record("bench", p, offsets[p], events.keys[i], events.values[i]))
            offsets[p] += 1
        out.append(batch)
    return out


async def _pass(
    batches: list[list[Any]], settings: Settings, client: redis.asyncio.Redis
) -> tuple[dict[str, float], float]:
    """One pass over every batch, phase by phase: (seconds per phase, script seconds)."""
    mapping = load_mapping()
    applier = BatchApplier(settings, _NoStore(), mapping, WorkerMetrics.create(), _NoDeadletters())
    # A fresh prefix per pass: the offset guard would skip a repeat on the same one.
    prefix = f"p{uuid.uuid4().hex[:8]}"
    config = StoreConfig(prefix, settings.retention_s)
    store = StateStore(client, config)
    limit = settings.max_message_bytes
    tick = time.perf_counter
    secs = dict.fromkeys(PHASES, 0.0)
    t0 = tick()
    messages: list[list[Consumed]] = [[consumed(e) for e in b] for b in batches]
    secs[PHASES[0]] = tick() - t0
    t0 = tick()
    for batch in messages:
        for m in batch:
            decode_event(m.value or b"", limit)
    secs[PHASES[1]] = tick() - t0
    t0 = tick()
    now_ms, future_ms = int(time.time() * 1000), settings.max_future_s * 1000
    plans = [plan_batch(batch, mapping, limit, now_ms, future_ms, {SOURCE}) for batch in messages]
    secs[PHASES[2]] = tick() - t0
    t0 = tick()
    for plan in plans:
        for entries in plan.shards.values():
            script_args(config, entries, 0)
    secs[PHASES[3]] = tick() - t0
    usec0 = await _script_usec(client)
    t0 = tick()
    for plan in plans:
        await store.apply(plan.shards, int(time.time() * 1000), {})
    secs[PHASES[4]] = tick() - t0
    script_s = (await _script_usec(client) - usec0) / 1e6
    t0 = tick()
    for batch in messages:
        await applier.process(batch)
    secs[PHASES[5]] = tick() - t0
    for name in [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]:
        await client.unlink(name)
    return secs, script_s


async def _run(
    events: BenchEvents, partitions: list[int], settings: Settings, redis_url: str, repeat: int
) -> PhaseTimes:
    """The best of ``repeat`` passes per phase: other load on the machine only adds time."""
    client = redis.asyncio.Redis.from_url(redis_url)
    batches = _batches(events, partitions, settings.batch_max)
    out = PhaseTimes(events=len(events), batches=len(batches), passes=repeat)
    out.seconds = dict.fromkeys(PHASES, float("inf"))
    out.script_s = float("inf")
    try:
        for _ in range(repeat):
            secs, script_s = await _pass(batches, settings, client)
            for phase, took in secs.items():
                out.seconds[phase] = min(out.seconds[phase], took)
            out.script_s = min(out.script_s, script_s)
    finally:
        await client.aclose()
    return out


def measure_phases(
    events: BenchEvents,
    partitions: list[int],
    settings: Settings,
    redis_url: str,
    repeat: int = 3,
) -> PhaseTimes:
    return asyncio.run(_run(events, partitions, settings, redis_url, repeat))


def phase_table(times: PhaseTimes, worker_cpu_us: float) -> str:
    """Per-event microseconds of each phase, against the real worker's CPU per event."""
    us = times.us_per_event
    lines = [
        f"in-process phases ({times.events:,} events, {times.batches} batches; best of "
        f"{times.passes} passes), us/event:"
    ]
    for phase in PHASES:
        lines.append(f"  {phase:44} {us(phase):6.1f}")
    script = times.script_s / times.events * 1e6
    client_side = us(PHASES[4]) - script
    metrics = us(PHASES[5]) - us(PHASES[2])
    ours = us(PHASES[0]) + us(PHASES[5]) + client_side
    lines += [
        f"  {'  of which apply.lua inside Redis':44} {script:6.1f}",
        f"  {'  of which encode, redis-py, socket':44} {client_side:6.1f}",
        f"  {'metric updates (stubbed apply - plan_batch)':44} {metrics:6.1f}",
        f"  {'our Python in the worker (excl. Redis)':44} {ours:6.1f}",
        f"  {'real worker CPU after start-up':44} {worker_cpu_us:6.1f}",
        f"  {'rest: Faust, aiokafka, asyncio':44} {worker_cpu_us - ours:6.1f}",
    ]
    return "\n".join(lines)
