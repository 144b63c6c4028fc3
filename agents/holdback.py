"""What a worker has prepared and not applied yet, and what of it goes now. Pure: no Kafka.

Kept apart from the consuming service (agents/consumer.py), which only asks Kafka which
partitions are behind and pauses the full ones, so these decisions are tested without it.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping

from agents.batch import PreparedBatch
from agents.held import PartitionHeld, by_partition, joined
from agents.skew import Shard, SkewGuard

log = logging.getLogger("demandmon.worker")
STALL_S = 20.0  # nothing applied for this long but waiting on a slower partition


class HoldBack:
    """Per partition, what is prepared and not applied, in offset order; cut so no
    partition runs ahead of the others in event time (agents/skew.py)."""

    def __init__(self, bound_ms: int, stall_s: float = STALL_S) -> None:
        self.skew = SkewGuard(bound_ms)
        self.held: dict[int, PartitionHeld] = {}
        self.stall_s = stall_s
        self._stalled_since: float | None = None  # since when nothing was let through

    def keep(self, fresh: PreparedBatch | None) -> None:
        """Add what was just prepared to what each partition holds."""
        for p, part in by_partition(fresh).items():
            if p in self.held:
                self.held[p].extend(part)  # held back before: earlier in the partition
            else:
                self.held[p] = part

    def release(
        self,
        behind: set[int],
        now: float,
        peers: Mapping[Shard, int] | None = None,
        peers_waiting: bool = False,
    ) -> PreparedBatch | None:
        """What goes now of all that is held. ``behind``: the partitions with more to
        deliver than was fetched; ``now``: a monotonic clock, for the give-way; ``peers``
        and ``peers_waiting``: where other workers' partitions are (SkewGuard.cuts)."""
        if not self.held:
            return None
        cuts = self.skew.cuts(self.held, behind, peers, peers_waiting)
        stalled = self._stalled_since
        if cuts and stalled is not None and now - stalled >= self.stall_s:
            # Never stuck for good (sources interleaved so that each waits on the other):
            # exactness near the horizon's edge gives way to progress.
            log.warning("partitions held back for %.0f s: applying regardless", self.stall_s)
            cuts = {}
        going: list[PartitionHeld] = []
        for p in list(self.held):
            cut = cuts.get(p)
            if cut is None:
                going.append(self.held.pop(p))
                continue
            go, stay = self.held[p].split(cut)
            if go is not None:
                going.append(go)
            if stay is None:
                del self.held[p]
            else:
                self.held[p] = stay
        kept = joined(going)
        if kept is not None:
            self._stalled_since = None
            self.skew.let_through(going)
        elif self._stalled_since is None:
            self._stalled_since = now
        return kept

    def next_times(self) -> dict[Shard, int]:
        """Where each shard stands, for the other workers (SkewGuard.next_times)."""
        return self.skew.next_times(self.held)

    def forget(self, partitions: Collection[int]) -> None:
        """These partitions were sought (or are gone): nothing of theirs is held any more."""
        self.held = {p: part for p, part in self.held.items() if p not in partitions}
        self.skew.forget(partitions)

    def full(self, batch_max: int) -> set[int]:
        """The partitions holding a batch's worth (to stop fetching, so what is held stays
        bounded)."""
        return {p for p, part in self.held.items() if len(part.messages) >= batch_max}
