"""The exporter's reader: what a scrape reuses from the last one, and when it may.

A scrape reads every exported source, in one round trip per step for all of them: the
sources, their shards, every shard's probe (``reader.ShardProbe``: its meta hash and how
many incidents it keeps), then read.lua for just the parts of the shards that changed.
The windows are added up here from each shard's hour and day buckets, kept between
scrapes with their versions (demandmon/exporter/buckets.py), as vectors of the exported
fields (demandmon/exporter/vectors.py); each reply is decoded, and a source's figures
added up, as soon as it arrives, while Redis runs the next scripts
(demandmon/exporter/replies.py). Besides the windows, the hour of the window end and the
hour before are kept (``hour_counts``): expected demand needs no read of them.

The invalidation rule, per shard (one source, one partition):

* ``all``, the gauges and the oldest open I incidents are read again when its probe
  differs from the one its figures were read under (written, pruned, rolled back,
  deleted and written again), or was never seen; the meta fields are the probe's own,
  read at every scrape;
* its windows are looked at again then too, and when the hour bucket of its source's
  window end moved (live windows end at the wall clock, so they move when the clock
  crosses an hour; a replay's end at its watermark, which any of its shards moves): of
  the buckets they add up, read.lua reads only those whose version (apply.lua's, which
  never repeats, even across a rollback) is not the one held, or that are not held; a
  bucket no longer there is dropped; a shard without versions (written by an older
  apply script) has every bucket read;
* its past-target counts are read again when its probe differs or the window end moved.

A source no longer exported (deleted or deregistered) is forgotten with its shards, and so
is a shard no longer in its source's partition set. A scrape that fails keeps nothing of
what it read. Figures are summed across shards again only for a source one of whose
shards changed; otherwise the same objects come back, which the collector takes to mean
that nothing needs rendering again.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import orjson

from demandmon.clients import SyncRedis
from demandmon.exporter.buckets import HOURS, Plan, Windows, add_up, flat_vector, read_windows
from demandmon.exporter.replies import each_reply
from demandmon.exporter.vectors import BUCKETS, GAUGES, Vector
from demandmon.state import keys
from demandmon.state.reader import (
    ShardProbe,
    SourceFigures,
    StateReader,
    add_meta,
    add_oldest,
    add_past,
    read_request,
    window_end,
    window_plan,
)
from demandmon.state.windows import WINDOWS, hour_bucket

TOTALS = "all"  # the window of everything kept (read.lua's ``all``)
_versions = itertools.count()


@dataclass(frozen=True)
class _Shard:
    """What was read of one shard, and under which probe, window hour and window end."""

    key: tuple[Any, ...]  # ShardProbe.key
    probe: ShardProbe
    totals: Vector
    totals_version: int  # ``all`` is one of a source's windows, yet read with the probe
    gauges: Vector
    oldest: dict[str, Any]
    hour: int
    windows: Windows  # and the buckets they add up, with their versions
    past_end: float
    past: dict[str, Any]
    state_version: int


@dataclass
class _Source:
    windows_key: tuple[tuple[int, int], ...]
    windows: dict[str, Counter[str]]
    state_key: tuple[Any, ...]
    figures: SourceFigures
    hours: dict[int, Counter[str]]  # hour start -> its bucket counters, summed


@dataclass
class _Pending:
    """A shard to read this scrape: which parts, and what to keep of the old entry."""

    source: str
    partition: int
    probe: ShardProbe
    old: _Shard | None
    hour: int
    plan: Plan
    end: float
    windows: bool
    past: bool
    reply: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def fresh(self) -> bool:
        return self.old is None or self.old.key != self.probe.key


class CachedStateReader(StateReader):
    """A StateReader whose ``read_sources`` reads only what changed since its last call
    (the rule is the module's docstring). For one exporter process; thread-safe only
    under the caller's lock (the collector holds one)."""

    def __init__(
        self, client: SyncRedis, prefix: str, windows: Mapping[str, int] = WINDOWS
    ) -> None:
        super().__init__(client, prefix)
        self.windows = dict(windows)
        # Which segments each window adds up: the same wherever the windows end.
        self._asked = {**self.windows, **HOURS}
        self._nesting = window_plan(0.0, self._asked)["windows"]
        self.shards: dict[tuple[str, int], _Shard] = {}
        self.by_source: dict[str, _Source] = {}
        self.shard_reads = 0  # shards read (in part or whole), for tests and the bench

    def read_sources(
        self,
        sources: Sequence[str],
        now_s: float,
        ready: Callable[[SourceFigures], None] | None = None,
    ) -> list[SourceFigures]:
        """Each source's figures at ``now_s`` (the rule is the module's docstring);
        ``ready(figures)`` for each source read again, as soon as its last shard is in,
        while Redis reads the next ones (they are kept only if the whole read succeeds)."""
        parts = self.partitions_of(sources)
        shards = [(s, p) for s in sources for p in parts[s]]
        probes = dict(
            zip(shards, self.probe([keys.shard(self.prefix, s, p) for s, p in shards]), strict=True)
        )
        ends: dict[str, float] = {}
        plans: dict[int, Plan] = {}  # by the hour the windows end in
        pending: list[_Pending] = []
        for source in sources:
            marks = [m for p in parts[source] if (m := probes[source, p].watermark_ms) is not None]
            end = window_end(source, now_s, max(marks) / 1000 if marks else None)
            ends[source] = end
            hour = hour_bucket(end)
            if hour not in plans:
                plans[hour] = Plan.of(hour, window_plan(end, self._asked)["segments"])
            for p in parts[source]:
                probe, old = probes[source, p], self.shards.get((source, p))
                job = _Pending(source, p, probe, old, hour, plans[hour], end, True, True)
                if not job.fresh and old is not None:
                    job.windows = old.hour != job.hour
                    job.past = old.past_end != end
                    if not (job.windows or job.past):
                        continue
                pending.append(job)
        requests: dict[tuple[Any, ...], tuple[dict[str, Any], str]] = {}  # mostly alike
        calls = [
            (keys.shard(self.prefix, j.source, j.partition), self._request(j, requests))
            for j in pending
        ]
        # Each reply is decoded, and a source's figures added up once its last shard is
        # in, while Redis runs the next scripts; kept only once everything is read.
        read: dict[tuple[str, int], _Shard] = {}
        done: dict[str, _Source] = {}
        last = {job.source: i for i, job in enumerate(pending)}

        def arrived(i: int, reply: dict[str, Any]) -> None:
            job = pending[i]
            job.reply = reply
            read[job.source, job.partition] = self._entry(job)
            if last[job.source] == i:
                source = job.source
                done[source] = self._figures(source, parts[source], ends[source], read)
                if ready is not None:
                    ready(done[source].figures)

        if calls:
            self.read_each(calls, arrived)
        for s in sources:
            if s not in done:
                done[s] = self._figures(s, parts[s], ends[s], read)
        # Everything read: only now is anything kept.
        self.shard_reads += len(pending)
        self.shards.update(read)
        for shard in set(self.shards) - set(shards):
            del self.shards[shard]
        self.by_source = done
        return [done[s].figures for s in sources]

    def hour_counts(self, source: str) -> dict[int, Counter[str]]:
        """The bucket counters of the hour holding ``source``'s window end and of the hour
        before, summed across its shards, as its last figures were read (none if it has no
        shard): expected demand takes them from here (demandmon/baseline/read.py)."""
        kept = self.by_source.get(source)
        return kept.hours if kept is not None else {}

    def read_each(
        self, calls: Sequence[tuple[str, str]], handle: Callable[[int, dict[str, Any]], None]
    ) -> None:
        """``read_shards``, each reply decoded and handed to ``handle(i, reply)`` as soon
        as it is read (demandmon/exporter/replies.py)."""
        scripted = [([base], [arg]) for base, arg in calls]
        each_reply(self.client, self.script, scripted, lambda i, raw: handle(i, orjson.loads(raw)))

    def _request(
        self, job: _Pending, made: dict[tuple[Any, ...], tuple[dict[str, Any], str]]
    ) -> str:
        fresh = job.fresh
        asked = (job.end, job.windows, job.past, fresh)
        if asked not in made:
            text = read_request(
                totals=fresh,
                gauges=fresh,
                past_end_s=job.end if job.past else None,
                oldest=fresh,
                by_bucket=job.plan.wire if job.windows else None,
                flat=True,
            )
            made[asked] = (orjson.loads(text), text)
        doc, text = made[asked]
        if not job.windows or job.old is None:
            return text
        # The versions held of each bucket and day: read.lua answers only what moved.
        return orjson.dumps({**doc, **job.old.windows.buckets.request(job.plan)}).decode()

    def _entry(self, job: _Pending) -> _Shard:
        doc = job.reply
        windows = None
        if job.windows:  # the buckets that moved, and the windows added up again
            held = job.old.windows if job.old is not None else None
            windows = read_windows(job.plan, held, doc, self._nesting)
        past = doc["past"] if job.past else None
        if job.fresh or job.old is None:
            assert windows is not None and past is not None
            version = next(_versions)
            return _Shard(
                key=job.probe.key,
                probe=job.probe,
                totals=flat_vector(BUCKETS, doc["windows"][TOTALS]),
                totals_version=version,
                gauges=flat_vector(GAUGES, doc["now"]),
                oldest=doc["oldest"],
                hour=job.hour,
                windows=windows,
                past_end=job.end,
                past=past,
                state_version=version,
            )
        old = job.old
        if windows is not None:
            old = replace(old, hour=job.hour, windows=windows)
        if past is not None:
            old = replace(old, past_end=job.end, past=past, state_version=next(_versions))
        return old

    def _figures(
        self,
        source: str,
        partitions: Sequence[int],
        end: float,
        read: Mapping[tuple[str, int], _Shard],
    ) -> _Source:
        """The source's figures over its shards (``read`` this scrape, else those kept),
        the last scrape's very objects when nothing changed; nothing is kept here."""
        entries = [read.get((source, p)) or self.shards[source, p] for p in partitions]
        cached = self.by_source.get(source)
        windows_key = tuple((e.windows.version, e.totals_version) for e in entries)
        state_key = (*(e.state_version for e in entries), *(e.key for e in entries), end)
        unchanged = cached is not None and cached.windows_key == windows_key
        if cached is not None and unchanged and cached.state_key == state_key:
            return cached
        hours: dict[int, Counter[str]] = {}
        if cached is not None and unchanged:
            windows, hours = cached.windows, cached.hours
        elif not entries:  # no shard yet: no window at all, as a fresh read
            windows = {}
        else:
            # Every entry's windows were read at this hour (the hour moving reads them).
            windows, hours = add_up([e.windows for e in entries], self.windows, hour_bucket(end))
            windows[TOTALS] = BUCKETS.counter([e.totals for e in entries])
        marks = [m for e in entries if (m := e.probe.watermark_ms) is not None]
        writes = [w for e in entries if (w := e.probe.last_write_ms) is not None]
        figures = SourceFigures(
            source=source,
            watermark_s=max(marks) / 1000 if marks else None,
            window_end_s=end,
            last_processed_s=max(writes) / 1000 if writes else None,
            windows=windows,
            now=GAUGES.counter([e.gauges for e in entries]),
        )
        for e in entries:
            add_meta(figures, e.probe.meta)
            add_past(figures, e.past)
            add_oldest(figures, e.oldest)
        return _Source(windows_key, windows, state_key, figures, hours)
