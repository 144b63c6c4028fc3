"""The batch applier: consumed messages -> validated entries -> Redis, exactly once.

Decoding and validation are ours, no exception from one message ever leaves, and a batch
that cannot be applied is retried until it is (the offset guard makes a retry harmless).
The applier keeps what it believes each shard and partition holds; Redis found holding
less (it lost writes) means a rewind: the consumer seeks the partition back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable

from agents.batch import Consumed, PreparedBatch, Rejection, plan_batch, source_of
from agents.classify import RcrpMapping
from agents.deadletter_sender import DeadLetterSender
from agents.isolation import apply_isolating
from agents.metrics import WorkerMetrics
from agents.registry import SourceRegistry
from agents.retry import T, until_done
from demandmon.settings import Settings
from demandmon.state.record import entry_offset
from demandmon.state.store import ApplyResult, Resume, Shard, StateStore
from schemas.vocabulary import APPLY_ERROR, TOO_LATE, UNKNOWN_SOURCE

log = logging.getLogger("demandmon.worker")
TOO_LATE_DETAIL = "occurred_at is further behind the source's watermark than the horizon"
APPLY_ERROR_DETAIL = "the apply script failed on this event"


def now_ms() -> int:
    return int(time.time() * 1000)


class BatchApplier:
    def __init__(
        self,
        settings: Settings,
        store: StateStore,
        mapping: RcrpMapping,
        metrics: WorkerMetrics,
        deadletters: DeadLetterSender,
    ) -> None:
        self.settings = settings
        self.store = store
        self.mapping = mapping
        self.metrics = metrics
        self.deadletters = deadletters
        # What this worker believes Redis holds: per shard, and per partition.
        self.shard_offsets: dict[Shard, int] = {}
        self.applied_through: dict[int, int] = {}
        # The source watermark each shard's retention last followed (-1: unknown).
        self.shard_horizons: dict[Shard, int] = {}
        # (partition, offset) of events the apply script failed on, in the current batch.
        self._poisoned: set[tuple[int, int]] = set()
        # The registered replay sources, as last read from Redis.
        self.registry = SourceRegistry()

    # -- assignment -------------------------------------------------------------------

    async def resume_point(self, partition: int) -> Resume:
        """Where a newly assigned partition must be read from, as Redis says."""
        return await self.until_done(lambda: self.store.resume(partition), "reading positions")

    def take(self, partition: int, resume: Resume) -> int:
        """Start applying a partition from ``resume``; returns the offset to seek to.
        Until then its messages are dropped: they may come from Kafka's committed offset,
        which can be ahead of what Redis holds."""
        self._believe(partition, resume)
        return resume.offset or 0

    def revoke(self, partition: int) -> None:
        self.applied_through.pop(partition, None)
        for shard in [s for s in self.shard_offsets if s[1] == partition]:
            del self.shard_offsets[shard]
            self.shard_horizons.pop(shard, None)
        self.metrics.forget_partition(partition)

    def _believe(self, partition: int, resume: Resume) -> None:
        for shard in [s for s in self.shard_offsets if s[1] == partition]:
            del self.shard_offsets[shard]
        for source, held in resume.shard_offsets.items():
            self.shard_offsets[(source, partition)] = held
        through = -1 if resume.offset is None else resume.offset - 1
        self.applied_through[partition] = through
        self.metrics.applied_offset.labels(str(partition)).set(through)

    async def _rewind(
        self, partition: int, floor: int | None = None, rolled_back: bool = True
    ) -> int | None:
        """Redis holds less than was applied: re-read the partition from where it stands.
        (``rolled_back`` False: a source was deleted under a batch; its messages are read
        again to be refused, and Redis lost nothing.)"""
        resume = await self.until_done(lambda: self.store.resume(partition), "reading positions")
        offset = resume.offset
        if floor is not None and (offset is None or floor < offset):
            offset = floor if floor > 0 else None
        self._believe(partition, Resume(offset, resume.shard_offsets))
        where = "the beginning" if offset is None else offset
        if rolled_back:
            self.metrics.rewinds.inc()
            log.warning(
                "partition %d: Redis holds older state than was applied; re-reading from %s",
                partition,
                where,
            )
        else:
            log.info("partition %d: a source was deleted; re-reading from %s", partition, where)
        return offset

    # -- sources ----------------------------------------------------------------------

    async def refresh_registry(self) -> None:
        """Read the registered sources, and forget the shards of any source no longer kept
        (deleted): its keys vanishing must not be taken for Redis going back."""
        started, started_ms = time.monotonic(), now_ms()
        names = await self.store.registered_sources()
        self.registry.update(names, started, started_ms)
        self.metrics.registered_sources.set(len(names))
        self.forget_unkept()

    def forget_unkept(self) -> None:
        """Drop what this worker believes about shards of sources that are not kept."""
        for book in (self.shard_offsets, self.shard_horizons):
            for shard in [s for s in book if not self.registry.keeps(s[0])]:
                del book[shard]

    async def check(self, partitions: Iterable[int]) -> dict[int, int | None]:
        """Compare what Redis holds with what was applied (Redis restored or failed over
        while the feed is quiet); returns the partitions to rewind and where to."""
        parts = [p for p in partitions if p in self.applied_through]
        if not parts:
            await self.refresh_registry()
            return {}
        shards = [s for s in self.shard_offsets if s[1] in parts]
        held_parts, held_shards = await self.store.positions_held(parts, shards)
        # The registry is read after the positions: `sources delete` deregisters before it
        # deletes keys, so a shard found gone above belongs to a source seen deleted here,
        # whose shards are forgotten instead of taken for Redis going back.
        await self.refresh_registry()
        shards = [s for s in shards if s in self.shard_offsets]
        floors: dict[int, int] = {}
        for p in parts:
            if held_parts[p] < self.applied_through[p]:
                floors[p] = held_parts[p] + 1
        for shard in shards:
            if held_shards[shard] < self.shard_offsets[shard]:
                p = shard[1]
                floors[p] = min(floors.get(p, held_shards[shard] + 1), held_shards[shard] + 1)
        if floors:
            return {p: await self._rewind(p, floor) for p, floor in floors.items()}
        # Sources move on in partitions other workers hold: follow their watermarks.
        sources = {source for source, _ in shards}
        await self._prune_behind(await self.store.source_watermarks(sources), now_ms())
        return {}

    # -- batches ----------------------------------------------------------------------

    async def process(self, messages: list[Consumed]) -> dict[int, int | None]:
        """Apply a batch; returns the partitions to rewind (Redis was found behind)."""
        if self.needs_registry(messages):
            await self.until_done(self.refresh_registry, "reading the source registry")
        return await self.commit(self.prepare(messages))

    def needs_registry(self, messages: list[Consumed]) -> bool:
        """Whether the registry must be read again before these messages are planned:
        one may name a source registered since the last read (a replay registered a
        moment ago is accepted on its first message). One read (a single SMEMBERS) per
        batch at most: a flood of unregistered names costs that, never a wait."""
        return self.registry.could_be_newer(messages)

    def prepare(self, messages: list[Consumed]) -> PreparedBatch:
        """Decode, validate and classify a batch: CPU only, no I/O, so the consumer can
        prepare the next batch while Redis applies this one."""
        now = now_ms()
        plan = plan_batch(
            messages,
            self.mapping,
            self.settings.max_message_bytes,
            now,
            self.settings.max_future_s * 1000,
            self.registry.names,
        )
        return PreparedBatch(messages, plan, now)

    async def commit(self, batch: PreparedBatch) -> dict[int, int | None]:
        """Dead-letter, apply, record positions; returns the partitions to rewind."""
        messages, plan, now_ms = batch.messages, batch.plan, batch.now_ms
        # Dead letters are delivered before the batch is applied: if we crash in between,
        # the batch is read again and a dead letter may repeat, but none is ever lost.
        if plan.rejections:
            await self.deadletters.send(plan.rejections)
        self._poisoned.clear()
        result = await self.until_done(
            lambda: apply_isolating(
                self.store, plan.shards, now_ms, self.shard_offsets, self._poisoned
            ),
            "applying a batch",
        )
        rewinds: dict[int, int | None] = {}
        if result.behind():
            # A shard found gone may be a source deleted since the batch was planned.
            await self.until_done(self.refresh_registry, "reading the source registry")
        for partition in sorted(result.behind()):
            floors, deleted = [], []
            for (source, p), r in result.shards.items():
                if p != partition or not r.behind:
                    continue
                if self.registry.keeps(source):
                    floors.append(r.offset_before + 1)
                else:  # read its messages again: they are refused now
                    deleted.append(min(entry_offset(e) for e in plan.shards[(source, p)]))
            rewinds[partition] = await self._rewind(
                partition, min(floors + deleted), rolled_back=bool(floors)
            )
        await self._settle_late(result, messages)
        watermarks = await self._save_positions(messages, result, set(rewinds))
        await self._prune_behind(watermarks, now_ms)
        self.metrics.count_batch(messages, plan, result, len(self._poisoned))
        return rewinds

    async def _prune_behind(self, watermarks: dict[str, int], now_ms: int) -> None:
        """Retention follows the source's watermark: shards of these sources in this
        worker's partitions that have not yet pruned up to it do so now."""
        lagging = {
            shard: held
            for shard, held in self.shard_offsets.items()
            if shard[0] in watermarks
            and shard[1] in self.applied_through
            and held >= 0
            and self.shard_horizons.get(shard, -1) < watermarks[shard[0]]
        }
        if not lagging:
            return
        results = await self.until_done(
            lambda: self.store.prune(lagging, watermarks, now_ms), "pruning"
        )
        for shard, r in results.items():
            if not r.behind:
                self.shard_horizons[shard] = r.horizon_watermark

    async def _settle_late(self, result: ApplyResult, messages: list[Consumed]) -> None:
        """Dead letters decided inside Redis (too late), and events the script refused."""
        by_offset: dict[tuple[int, int], Consumed] = {}
        for shard, r in result.shards.items():
            if r.behind or not r.late:
                continue
            # Built only when something is owed: most batches owe nothing.
            by_offset = by_offset or {(m.partition, m.offset): m for m in messages}
            owed = [by_offset[(shard[1], o)] for o in r.late if (shard[1], o) in by_offset]
            await self.deadletters.send(
                [Rejection(m, shard[0], TOO_LATE, TOO_LATE_DETAIL) for m in owed]
            )
            await self.until_done(
                lambda s=shard, offsets=r.late: self.store.settle_late(s, offsets),  # type: ignore[misc]
                "settling dead letters",
            )
            for _ in owed:
                self.metrics.deadlettered.labels(TOO_LATE).inc()
        if self._poisoned:
            rejections = [
                Rejection(
                    m, source_of(m.headers) or UNKNOWN_SOURCE, APPLY_ERROR, APPLY_ERROR_DETAIL
                )
                for m in messages
                if (m.partition, m.offset) in self._poisoned
            ]
            await self.deadletters.send(rejections)

    async def _save_positions(
        self, messages: list[Consumed], result: ApplyResult, rewound: set[int]
    ) -> dict[str, int]:
        """Record positions and sources' watermarks; returns the watermarks."""
        ends: dict[int, int] = {}
        for m in messages:
            if m.partition not in rewound and m.offset > ends.get(m.partition, -1):
                ends[m.partition] = m.offset
        for shard, r in result.shards.items():
            if not r.behind and shard[1] not in rewound:
                self.shard_offsets[shard] = max(r.offset_after, self.shard_offsets.get(shard, -1))
        positions = {
            p: (end, {s: off for (s, sp), off in self.shard_offsets.items() if sp == p})
            for p, end in ends.items()
        }
        watermarks: dict[str, int] = {}
        for shard, r in result.shards.items():
            if not r.behind:
                watermarks[shard[0]] = max(r.horizon_watermark, watermarks.get(shard[0], -1))
                self.shard_horizons[shard] = r.horizon_watermark
        await self.until_done(
            lambda: self.store.save_positions(positions, watermarks), "saving positions"
        )
        for p, end in ends.items():
            self.applied_through[p] = max(end, self.applied_through.get(p, -1))
            self.metrics.applied_offset.labels(str(p)).set(self.applied_through[p])
        return watermarks

    async def until_done(self, action: Callable[[], Awaitable[T]], what: str) -> T:
        return await until_done(action, what, self.metrics.apply_failures)
