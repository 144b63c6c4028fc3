"""Keep a worker's partitions together in event time. Pure: no Kafka, no clock.

Lateness is judged against the source's watermark across all its partitions
(docs/semantics.md). A replay sends its file in time order, but Kafka hands a worker
whole fetches per partition: with a sparse stream one partition's fetch can span weeks, and
if it were applied ahead of the others, their older events would find the source's
watermark more than the horizon ahead and turn too late, which the file's order never
made them. So a batch keeps, per source, only events up to ``bound_ms`` past the slowest
partition that still has events to deliver; the rest is held back (its partition paused)
and offered again with the next batch.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from demandmon.state.record import EVENT, Entry, EventEntry

_OFFSET = EventEntry._fields.index("offset")
_OCCURRED = EventEntry._fields.index("occurred_ms")
_IS_EVENT = EventEntry._fields.index("is_event")
Shard = tuple[str, int]  # (source, partition)


@dataclass
class SkewGuard:
    bound_ms: int
    # (source, partition) -> the latest event time let through from that partition.
    heads: dict[Shard, int] = field(default_factory=dict)
    # Partitions that delivered anything since they were (re)positioned.
    delivered: set[int] = field(default_factory=set)

    def forget(self, partitions: Collection[int]) -> None:
        """These partitions were sought (assigned, rewound, revoked): what they delivered
        before says nothing about where they are now."""
        self.heads = {s: t for s, t in self.heads.items() if s[1] not in partitions}
        self.delivered -= set(partitions)

    def cuts(
        self, shards: Mapping[Shard, Sequence[Entry]], behind: Collection[int]
    ) -> dict[int, int]:
        """Per partition, the first offset to hold back (partitions absent: keep all).

        ``behind``: the partitions that have more to deliver after this batch (records
        held back, or Kafka's high watermark not reached). A partition behind that has
        delivered nothing yet may hold the oldest events of all: everything else waits for
        it. The slowest partition is never cut, so every batch makes progress."""
        in_batch = {p for _, p in shards}
        waiting = {p for p in behind if p not in self.delivered and p not in in_batch}
        if waiting:
            return {p: _first_offset(shards, p) for p in in_batch}
        frontier: dict[Shard, int] = dict(self.heads)
        for shard, entries in shards.items():
            latest = max((_time(e) for e in entries if _is_event(e)), default=None)
            if latest is not None:
                frontier[shard] = max(latest, frontier.get(shard, latest))
        floors: dict[str, int] = {}
        for (source, p), t in frontier.items():
            if p in behind:
                floors[source] = min(t, floors.get(source, t))
        cut: dict[int, int] = {}
        for (source, p), entries in shards.items():
            floor = floors.get(source)
            if floor is None:
                continue
            limit = floor + self.bound_ms
            for e in entries:
                if _is_event(e) and _time(e) > limit:
                    offset = int(str(e[_OFFSET]))
                    cut[p] = min(offset, cut.get(p, offset))
                    break
        return cut

    def let_through(self, shards: Mapping[Shard, Sequence[Entry]]) -> None:
        """Record what a (cut) batch lets through."""
        for shard, entries in shards.items():
            self.delivered.add(shard[1])
            latest = max((_time(e) for e in entries if _is_event(e)), default=None)
            if latest is not None:
                self.heads[shard] = max(latest, self.heads.get(shard, latest))


def _time(e: Entry) -> int:
    return int(str(e[_OCCURRED]))


def _is_event(e: Entry) -> bool:
    return e[_IS_EVENT] == EVENT


def _first_offset(shards: Mapping[Shard, Sequence[Entry]], partition: int) -> int:
    return min(int(str(e[_OFFSET])) for (_, p), es in shards.items() if p == partition for e in es)
