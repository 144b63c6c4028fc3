"""Keeping with the other workers of the group in event time.

Each worker keeps its own partitions together (agents/skew.py), but partitions held by
different workers would not wait for each other: one worker stopped for a few seconds
while a replay arrives, and the other runs weeks ahead, so the stopped one's events find
the source's watermark past the horizon and turn too late. So every worker publishes
where its partitions stand, the time of the next event each will apply
(demandmon/state/frontiers.py), and reads the others': a partition of another worker
still behind (Redis has applied less than Kafka holds) bounds this worker's, which go at
most the skew bound past it. The partition furthest back is never held by its own worker,
so the group always moves. A worker holding every partition does none of this.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from agents.skew import Shard
from demandmon.clients import AsyncRedis
from demandmon.state import frontiers

log = logging.getLogger("demandmon.worker")
END_OFFSETS_WAIT_S = 5.0


@dataclass(frozen=True)
class PeerView:
    """Frontiers of the other workers' partitions still behind; ``waiting``: one of them
    is behind and nothing was published of it yet."""

    frontiers: dict[Shard, int] = field(default_factory=dict)
    waiting: bool = False


class Peers:
    def __init__(self, client: AsyncRedis, prefix: str, topic: str, kafka: dict[str, Any]) -> None:
        """``kafka``: options of a Kafka client of its own for end offsets. The worker's
        consumer would queue each request behind a fetch waiting for data (up to half a
        second) whenever one of its partitions is caught up."""
        self.client, self.prefix, self.topic = client, prefix, topic
        self.kafka = kafka
        self._offsets: AIOKafkaConsumer | None = None
        self.view = PeerView()
        self.others = False  # whether other workers hold partitions of the topic
        self._mine: set[int] = set()

    async def stop(self) -> None:
        if self._offsets is not None:
            await self._offsets.stop()

    async def _end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        if self._offsets is None:
            # Made inside the running loop, as aiokafka needs; it never joins the group.
            offsets = AIOKafkaConsumer(**self.kafka)
            await offsets.start()
            self._offsets = offsets
        ends: dict[TopicPartition, int] = await self._offsets.end_offsets(tps)
        return ends

    async def refresh(self, consumer: AIOKafkaConsumer, mine: set[int]) -> None:
        """Read where the other workers' partitions stand. Called after every fetch and
        before what it fetched is let through: a view older than the fetch could miss
        events that reached another worker's partitions meanwhile (a replay starting)."""
        everyone = consumer.partitions_for_topic(self.topic) or set()
        others = set(everyone) - mine
        self.others, self._mine = bool(others), mine
        if not others:
            self.view = PeerView()
            return
        try:
            tps = [TopicPartition(self.topic, p) for p in sorted(others)]
            ends = await asyncio.wait_for(self._end_offsets(tps), END_OFFSETS_WAIT_S)
            applied, published = await frontiers.read(self.client, self.prefix, others)
        except Exception as exc:
            # Nothing is let through on a view that could be older than the fetch.
            log.info("reading the other workers' frontiers failed (%s)", type(exc).__name__)
            self.view = PeerView(waiting=True)
            return
        behind = {tp.partition for tp, end in ends.items() if applied[tp.partition] + 1 < end}
        seen = {p for _, p in published}
        self.view = PeerView(
            {shard: t for shard, t in published.items() if shard[1] in behind},
            bool(behind - seen),
        )

    async def publish(self, standing: Callable[[], dict[Shard, int]]) -> None:
        """Where this worker's partitions stand now (after letting a batch through, so
        the others move on at once). A failure leaves older, lower figures: the others
        only hold back more."""
        if not self.others:
            return
        try:
            ours = {shard: t for shard, t in standing().items() if shard[1] in self._mine}
            await frontiers.publish(self.client, self.prefix, ours)
        except Exception as exc:
            log.info("publishing the frontiers failed (%s)", type(exc).__name__)

    async def taken(self, partitions: set[int]) -> None:
        """These partitions are this worker's now, read from where Redis holds them: what
        their last holder published is not where they are."""
        if partitions:
            await frontiers.forget(self.client, self.prefix, partitions)
