"""The worker's consuming service: whole Kafka batches to the applier, inside the Faust app.

Why not a Faust agent: an agent's stream hands over one message at a time and commits
offsets to Kafka on its own, while the design keeps the position with the state in Redis.
This service reads whole `getmany` batches, and on every partition assignment seeks to
the position Redis holds (so Redis coming back older re-applies instead of losing
events). Every few seconds it checks that Redis still holds what was applied, and
refreshes each partition's end offset, so lag shows even while applying is stuck. What
it lets through is kept together in event time across its own partitions
(agents/holdback.py) and with the other workers' (agents/peers.py).

If this service fails for any reason but a stop, the Faust worker exits non-zero (mode
re-raises a crashed service's exception), so a supervisor restarts it; it never stays
up doing nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import mode
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from agents.applier import BatchApplier
from agents.batch import PreparedBatch
from agents.holdback import HoldBack
from agents.kafka_records import consumed, consumer_options, offsets_client_options
from agents.metrics import WorkerMetrics
from agents.peers import Peers
from agents.progress import commit_applied, report_lag
from demandmon.settings import Settings
from demandmon.state.registry import REFRESH_EVERY_S

log = logging.getLogger("demandmon.worker")
# How often Redis's positions are compared with what was applied, and the registry read
# again: `sources delete` counts on every worker doing so this often.
CHECK_EVERY_S = REFRESH_EVERY_S
COMMIT_EVERY_S = 5.0  # Kafka's committed offsets are for tools only (lag, group views)
REVOKE_WAIT_S = 10.0
PEER_WAIT_MS = 5


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, service: EventConsumer) -> None:
        self.service = service

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.service.on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self.service.on_assigned(assigned)


class EventConsumer(mode.Service):
    def __init__(
        self, settings: Settings, applier: BatchApplier, metrics: WorkerMetrics, **kw: Any
    ) -> None:
        super().__init__(**kw)
        self.settings = settings
        self.applier = applier
        self.metrics = metrics
        self._consumer: AIOKafkaConsumer | None = None
        # Held while a batch is applied, so a revocation waits for it (bounded).
        self.busy = asyncio.Lock()
        self._last_check = 0.0
        self._last_commit = 0.0
        # Partitions kept together in event time (agents/holdback.py): what each has
        # prepared and not applied (one holding a batch's worth is paused); and each
        # partition's next offset to deliver.
        self.holdback = HoldBack(settings.partition_skew_s * 1000)
        self.peers = Peers(
            applier.store.client,
            settings.key_prefix,
            settings.events_topic,
            offsets_client_options(settings),
        )
        self._next: dict[int, int] = {}
        # Each seek counts; a fetch prepared while a partition was sought again (a
        # rebalance or rewind between the fetch and its use) is dropped for it.
        self._seeks = 0
        self._sought_at: dict[int, int] = {}

    @property
    def consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("the consumer is not started")
        return self._consumer

    async def on_start(self) -> None:
        # aiokafka clients must be made inside the running event loop.
        self._consumer = AIOKafkaConsumer(**consumer_options(self.settings))
        self.consumer.subscribe([self.settings.events_topic], listener=_Rebalance(self))
        await self.consumer.start()

    async def on_stop(self) -> None:
        await self.peers.stop()
        if self._consumer is not None:
            await self._consumer.stop()

    async def on_assigned(self, assigned: list[TopicPartition]) -> None:
        keep = {tp.partition for tp in assigned}
        for partition in [p for p in self.applier.applied_through if p not in keep]:
            self.applier.revoke(partition)
        self._reposition(keep | set(self._next))
        await self.applier.until_done(
            lambda: self.peers.taken(keep), "forgetting where the partitions were"
        )
        for tp in sorted(assigned):
            resume = await self.applier.resume_point(tp.partition)
            # Taken and sought with no await in between, so no batch can slip through
            # from the position Kafka chose before the seek.
            offset = self.applier.take(tp.partition, resume)
            self.consumer.seek(tp, offset)
            self._next[tp.partition] = offset
            self._sought({tp.partition})
        if assigned:
            log.info("assigned partitions %s", sorted(tp.partition for tp in assigned))

    async def on_revoked(self, revoked: list[TopicPartition]) -> None:
        try:
            await asyncio.wait_for(self.busy.acquire(), REVOKE_WAIT_S)
        except TimeoutError:
            log.warning("a batch is still being applied while partitions are revoked")
        else:
            self.busy.release()
        await self._commit()
        for tp in revoked:
            self.applier.revoke(tp.partition)
        self._reposition({tp.partition for tp in revoked})

    def _rewind(self, rewinds: dict[int, int | None]) -> None:
        topic = self.settings.events_topic
        self._reposition(set(rewinds))
        for partition, offset in rewinds.items():
            # Offset 0 below the log start resets to the earliest offset kept.
            self.consumer.seek(TopicPartition(topic, partition), offset or 0)
            self._next[partition] = offset or 0

    def _reposition(self, partitions: set[int]) -> None:
        """These partitions are sought (or gone): nothing of theirs is held any more."""
        if not partitions:
            return
        self._sought(partitions)
        self.holdback.forget(partitions)
        for partition in partitions:
            self._next.pop(partition, None)
        topic = self.settings.events_topic
        mine = self.consumer.assignment()
        again = [TopicPartition(topic, p) for p in partitions]
        self.consumer.resume(*[tp for tp in again if tp in mine])

    def _sought(self, partitions: set[int]) -> None:
        self._seeks += 1
        self._sought_at.update(dict.fromkeys(partitions, self._seeks))

    def _current(self, prepared: PreparedBatch | None, fetched: int) -> PreparedBatch | None:
        """Less the partitions sought since the fetch (their messages are read again)."""
        moved = {p for p, at in self._sought_at.items() if at > fetched}
        return prepared.without(moved) if prepared is not None and moved else prepared

    def _behind(self) -> set[int]:
        """The partitions taken that have more to deliver than has been fetched: Kafka's
        high watermark not known yet, or not reached."""
        behind = set()
        # Only partitions still assigned: between a rebalance and its callbacks Kafka may
        # have taken some back already (and aiokafka refuses to answer for those).
        for tp in self.consumer.assignment():
            if tp.partition not in self.applier.applied_through:
                continue
            high = self.consumer.highwater(tp)
            if high is None or self._next.get(tp.partition, 0) < high:
                behind.add(tp.partition)
        return behind

    def _hold_back(self, fresh: PreparedBatch | None) -> PreparedBatch | None:
        """What to apply now of all that is prepared (agents/holdback.py); pause the
        partitions holding a batch's worth, resume the others."""
        self._keep(fresh)
        if not self.holdback.held:
            return None
        view = self.peers.view
        kept = self.holdback.release(self._behind(), time.monotonic(), view.frontiers, view.waiting)
        self._pause_full()
        return kept

    def _keep(self, fresh: PreparedBatch | None) -> None:
        self.holdback.keep(fresh)
        self._pause_full()

    def _pause_full(self) -> None:
        """Held messages are not fetched again; a partition holding a batch's worth stops
        fetching until it is let through, so what is held stays bounded."""
        topic = self.settings.events_topic
        full = {TopicPartition(topic, p) for p in self.holdback.full(self.settings.batch_max)}
        mine = self.consumer.assignment()
        if full:
            self.consumer.pause(*[tp for tp in full if tp in mine])
        self.consumer.resume(*[tp for tp in self.consumer.paused() if tp not in full])

    @mode.Service.task
    async def _consume(self) -> None:
        """Fetch, prepare, apply: while Redis applies one batch the next ones are fetched
        and prepared (decoding is CPU in this process, applying is CPU in Redis), with at
        most one batch being applied at a time, in order. What is prepared meanwhile is
        held per partition and cut when the batch in flight is done."""
        within_ms = int(self.settings.batch_within_s * 1000)
        applying: asyncio.Task[dict[int, int | None]] | None = None
        while not self.should_stop:
            records = await self.consumer.getmany(
                # Held back while other workers are there: look again soon, since what
                # lets it through is their progress, not a fetch (agents/peers.py).
                timeout_ms=PEER_WAIT_MS if self.holdback.held and self.peers.others else within_ms,
                max_records=self.settings.batch_max,
            )
            fetched = self._seeks
            # Partitions not yet taken (assignment still reading Redis) are read again
            # once they are sought to the position Redis holds.
            taken = self.applier.applied_through
            fresh = [
                consumed(r) for tp, batch in records.items() if tp.partition in taken for r in batch
            ]
            for m in fresh:
                self._next[m.partition] = max(m.offset + 1, self._next.get(m.partition, 0))
            prepared: PreparedBatch | None = None
            if fresh:
                if self.applier.needs_registry(fresh):
                    # The registry changes what the applier believes: nothing in flight.
                    await self._finish(applying)
                    applying = None
                    await self.applier.until_done(
                        self.applier.refresh_registry, "reading the source registry"
                    )
                # In a thread: the event loop goes on fetching and applying meanwhile.
                prepared = await asyncio.to_thread(self.applier.prepare, fresh)
            backlog = len(fresh) >= self.settings.batch_max  # so the next fetch is at hand
            if backlog and applying is not None and not applying.done():
                # Redis is still applying: keep this and fetch more meanwhile, so preparing
                # overlaps applying even when the guard lets through in lumps. (A live feed
                # never waits for the next fetch here.)
                self._keep(self._current(prepared, fetched))
                continue
            if applying is not None:
                await self._finish(applying)  # a rewind seeks: _current drops what it read
                applying = None
            mine = {tp.partition for tp in self.consumer.assignment()}
            await self.peers.refresh(self.consumer, mine)
            prepared = self._hold_back(self._current(prepared, fetched))
            await self.peers.publish(self.holdback.next_times)
            if prepared is not None:
                applying = asyncio.ensure_future(self._apply(prepared))
            if time.monotonic() - self._last_check >= CHECK_EVERY_S:
                await self._finish(applying)
                applying = None
                await self._check()
            if time.monotonic() - self._last_commit >= COMMIT_EVERY_S:
                await self._commit()
        await self._finish(applying)

    async def _apply(self, prepared: PreparedBatch) -> dict[int, int | None]:
        async with self.busy:
            # Partitions revoked since the batch was fetched are another worker's now.
            gone = {m.partition for m in prepared.messages} - set(self.applier.applied_through)
            batch = prepared.without(gone)
            return await self.applier.commit(batch) if batch is not None else {}

    async def _finish(self, applying: asyncio.Task[dict[int, int | None]] | None) -> None:
        """Wait for the batch being applied; rewind what it found behind."""
        if applying is not None:
            self._rewind(await applying)

    async def _check(self) -> None:
        self._last_check = time.monotonic()
        partitions = [tp.partition for tp in self.consumer.assignment()]
        async with self.busy:
            try:
                self._rewind(await self.applier.check(partitions))
            except Exception as exc:  # tried again next time; never holds up applying
                log.error("checking positions failed (%s)", type(exc).__name__)

    async def _commit(self) -> None:
        self._last_commit = time.monotonic()
        topic, applied = self.settings.events_topic, self.applier.applied_through
        await commit_applied(self.consumer, topic, applied)

    @mode.Service.timer(CHECK_EVERY_S)
    async def _refresh_lag(self) -> None:
        await report_lag(self.consumer, self.applier.applied_through, self.metrics, CHECK_EVERY_S)
