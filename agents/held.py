"""What a worker has prepared but not applied yet, one partition at a time. Pure.

The skew guard (agents/skew.py) holds back what runs ahead of the slowest partition; on a
sparse backlog it can hold thousands of entries for many rounds. So what it needs of them
is kept up to date as they come and go, never found by scanning them again: per source the
latest event time, and the first event (the offset a cut falls on). A round touches the
fresh messages, the entries it lets through, and (only when something it held is let
through up to a cut) a search of that partition's entries for the cut.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from agents.batch import Consumed, Plan, PreparedBatch, Rejection
from demandmon.state.record import EVENT, Entry, EventEntry, entry_offset

_OCCURRED = EventEntry._fields.index("occurred_ms")
_IS_EVENT = EventEntry._fields.index("is_event")


@dataclass(frozen=True, slots=True)
class FirstEvent:
    offset: int
    source: str
    occurred_ms: int


@dataclass
class PartitionHeld:
    """One partition's prepared messages, in offset order (per source, too)."""

    partition: int
    messages: list[Consumed]
    shards: dict[str, list[Entry]]  # source -> entries
    rejections: list[Rejection]
    events: int  # event entries (Plan.applied_candidates)
    now_ms: int
    latest: dict[str, int] = field(default_factory=dict)  # source -> latest event time
    first: FirstEvent | None = None  # the earliest-offset event entry

    @property
    def start(self) -> int:
        """The first offset held (so a cut there holds all of it)."""
        return self.messages[0].offset

    def extend(self, later: PartitionHeld) -> None:
        """Add a later part of the same partition (every offset past this one's)."""
        self.messages.extend(later.messages)
        for source, entries in later.shards.items():
            self.shards.setdefault(source, []).extend(entries)
        self.rejections.extend(later.rejections)
        self.events += later.events
        self.now_ms = max(self.now_ms, later.now_ms)
        for source, t in later.latest.items():
            self.latest[source] = max(t, self.latest.get(source, t))
        if self.first is None:
            self.first = later.first

    def first_times(self) -> dict[str, int]:
        """Per source, the event time of its first event held (in offset order)."""
        out: dict[str, int] = {}
        for source, entries in self.shards.items():
            for e in entries:
                if e[_IS_EVENT] == EVENT:
                    out[source] = int(str(e[_OCCURRED]))
                    break
        return out

    def first_over(self, limits: Mapping[str, int]) -> int | None:
        """The offset of the first event past its source's limit (a source without one is
        never cut); None when there is none."""
        first = self.first
        if first is None:
            return None
        limit = limits.get(first.source)
        if limit is not None and first.occurred_ms > limit:
            return first.offset  # the usual case while holding: no search
        found: int | None = None
        for source, limit in limits.items():
            if self.latest.get(source, limit) <= limit:
                continue  # nothing of this source is past it
            for e in self.shards.get(source, ()):
                if e[_IS_EVENT] == EVENT and int(str(e[_OCCURRED])) > limit:
                    offset = entry_offset(e)
                    found = offset if found is None else min(found, offset)
                    break
        return found

    def split(self, cut: int) -> tuple[PartitionHeld | None, PartitionHeld | None]:
        """What goes now (offsets before ``cut``) and what stays held (from ``cut`` on)."""
        if cut <= self.start:
            return None, self
        at = bisect_left(self.messages, cut, key=_message_offset)
        if at == len(self.messages):
            return self, None
        now_shards: dict[str, list[Entry]] = {}
        later_shards: dict[str, list[Entry]] = {}
        now_latest: dict[str, int] = {}
        now_events = 0
        later_first: FirstEvent | None = None
        for source, entries in self.shards.items():
            i = bisect_left(entries, cut, key=entry_offset)
            if i:
                now_shards[source] = entries[:i]
                times = _event_times(now_shards[source])
                now_events += len(times)
                if times:
                    now_latest[source] = max(times)
            if i < len(entries):
                later_shards[source] = entries[i:]
                first = _first_event(source, later_shards[source])
                if first and (later_first is None or first.offset < later_first.offset):
                    later_first = first
        later_latest = {}
        for source, entries in later_shards.items():
            whole = self.latest.get(source)
            if whole is not None and now_latest.get(source, whole - 1) < whole:
                later_latest[source] = whole  # the latest was not let through: still held
            elif times := _event_times(entries):
                later_latest[source] = max(times)
        now_rejections = [r for r in self.rejections if r.message.offset < cut]
        later_rejections = self.rejections[len(now_rejections) :]
        now = PartitionHeld(
            self.partition,
            self.messages[:at],
            now_shards,
            now_rejections,
            now_events,
            self.now_ms,
            now_latest,
            self.first if self.first and self.first.offset < cut else None,
        )
        later = PartitionHeld(
            self.partition,
            self.messages[at:],
            later_shards,
            later_rejections,
            self.events - now_events,
            self.now_ms,
            later_latest,
            later_first,
        )
        return now, later


def by_partition(batch: PreparedBatch | None) -> dict[int, PartitionHeld]:
    """A prepared batch as one part per partition."""
    if batch is None:
        return {}
    parts: dict[int, PartitionHeld] = {}
    for m in batch.messages:
        part = parts.get(m.partition)
        if part is None:
            part = parts[m.partition] = PartitionHeld(m.partition, [], {}, [], 0, batch.now_ms)
        part.messages.append(m)
    for (source, p), entries in batch.plan.shards.items():
        part = parts[p]
        part.shards[source] = entries
        times = _event_times(entries)
        part.events += len(times)
        if times:
            part.latest[source] = max(times)
        first = _first_event(source, entries)
        if first and (part.first is None or first.offset < part.first.offset):
            part.first = first
    for r in batch.plan.rejections:
        parts[r.message.partition].rejections.append(r)
    return parts


def joined(parts: Iterable[PartitionHeld]) -> PreparedBatch | None:
    """Parts of different partitions as one batch to apply (None: nothing)."""
    messages: list[Consumed] = []
    plan = Plan()
    now_ms = 0
    for part in parts:
        messages.extend(part.messages)
        for source, entries in part.shards.items():
            plan.shards[(source, part.partition)] = entries
        plan.rejections.extend(part.rejections)
        plan.applied_candidates += part.events
        now_ms = max(now_ms, part.now_ms)
    return PreparedBatch(messages, plan, now_ms) if messages else None


def _message_offset(m: Consumed) -> int:
    return m.offset


def _event_times(entries: list[Entry]) -> list[int]:
    return [int(str(e[_OCCURRED])) for e in entries if e[_IS_EVENT] == EVENT]


def _first_event(source: str, entries: list[Entry]) -> FirstEvent | None:
    for e in entries:
        if e[_IS_EVENT] == EVENT:
            return FirstEvent(entry_offset(e), source, int(str(e[_OCCURRED])))
    return None
