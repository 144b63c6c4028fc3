"""Keep a worker's partitions together in event time. Pure: no Kafka, no clock.

Lateness is judged against the source's watermark across all its partitions
(docs/semantics.md). A replay sends its file in time order, but Kafka hands a worker
whole fetches per partition: with a sparse stream one partition's fetch can span weeks, and
if it were applied ahead of the others, their older events would find the source's
watermark more than the horizon ahead and turn too late, which the file's order never
made them. So a batch keeps, per source, only events up to ``bound_ms`` past the slowest
partition that still has events to deliver; the rest is held back (its partition paused)
and offered again with the next batch
(agents/held.py keeps what is held, and what this needs of it).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from agents.held import PartitionHeld

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

    def frontier(self, held: Mapping[int, PartitionHeld]) -> dict[Shard, int]:
        """How far each shard has got: the latest event time let through or held."""
        frontier: dict[Shard, int] = dict(self.heads)
        for p, part in held.items():
            for source, t in part.latest.items():
                shard = (source, p)
                frontier[shard] = max(t, frontier.get(shard, t))
        return frontier

    def next_times(self, held: Mapping[int, PartitionHeld]) -> dict[Shard, int]:
        """Where each shard stands for the other workers: the time of its first event held,
        or of the latest let through when it holds none (what it applies next comes after).
        Not the latest held, as ``frontier`` for this worker's own partitions: another
        worker's batch is applied apart from this one's, so everything held here must
        still find the source's watermark within reach."""
        out: dict[Shard, int] = dict(self.heads)
        for p, part in held.items():
            for source, t in part.first_times().items():
                out[(source, p)] = t
        return out

    def cuts(
        self,
        held: Mapping[int, PartitionHeld],
        behind: Collection[int],
        peers: Mapping[Shard, int] | None = None,
        peers_waiting: bool = False,
    ) -> dict[int, int]:
        """Per partition, the first offset to hold back (partitions absent: let all through).

        ``held``: what each partition has prepared and not applied. ``behind``: the
        partitions that have more to deliver than that (Kafka's high watermark not
        reached). A partition behind that has delivered nothing yet may hold the oldest
        events of all: everything else waits for it. The slowest partition is never cut,
        so every batch makes progress. ``peers``: the frontiers of other workers'
        partitions still behind, which bound these too; ``peers_waiting``: one of theirs
        is behind and has published nothing yet (everything waits for it)."""
        waiting = {p for p in behind if p not in self.delivered and p not in held}
        if waiting or peers_waiting:
            return {p: part.start for p, part in held.items()}
        floors: dict[str, int] = {}
        for (source, p), t in self.frontier(held).items():
            if p in behind:
                floors[source] = min(t, floors.get(source, t))
        for (source, _), t in (peers or {}).items():
            floors[source] = min(t, floors.get(source, t))
        cut: dict[int, int] = {}
        for p, part in held.items():
            limits = {s: floors[s] + self.bound_ms for s in part.shards if s in floors}
            if limits and (offset := part.first_over(limits)) is not None:
                cut[p] = offset
        return cut

    def let_through(self, parts: Iterable[PartitionHeld]) -> None:
        """Record what a (cut) batch lets through."""
        for part in parts:
            self.delivered.add(part.partition)
            for source, t in part.latest.items():
                shard = (source, part.partition)
                self.heads[shard] = max(t, self.heads.get(shard, t))
