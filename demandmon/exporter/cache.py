"""The exporter's reader: what a scrape reuses from the last one, and when it may.

A scrape reads every exported source, in one round trip per step for all of them: the
sources, their shards, every shard's probe (``reader.ShardProbe``: its meta hash and how
many incidents it keeps), then read.lua for just the parts of the shards that changed.

The invalidation rule, per shard (one source, one partition):

* everything is read again when its probe differs from the one its figures were read
  under (written, pruned, rolled back, deleted and written again), or was never seen;
* its windows are read again when the hour bucket of its source's window end moved: live
  windows end at the wall clock, so they move when the clock crosses an hour; a replay's
  end at its watermark, which any of its shards moves;
* its past-target counts are read again when the window end moved at all;
* ``all``, the gauges and the oldest open I incidents follow the probe alone, and the meta
  fields are the probe's own, read at every scrape.

A source no longer exported (deleted or deregistered) is forgotten with its shards, and so
is a shard no longer in its source's partition set. A scrape that fails keeps nothing of
what it read. Figures are summed across shards again only for a source one of whose
shards changed; otherwise the same objects come back, which the collector takes to mean
that nothing needs rendering again.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from demandmon.clients import SyncRedis
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
)
from demandmon.state.record import BUCKET_COUNTERS, GAUGES, Code, counter_field
from demandmon.state.windows import WINDOWS, hour_bucket
from schemas.vocabulary import BCU_CODES, CATEGORIES, GRADES_WITH_UNKNOWN, TARGET_GRADES

TOTALS = "all"  # the window of everything kept (read.lua's ``all``)
_DOMAINS: dict[str, tuple[str, ...]] = {
    "bcu": BCU_CODES,
    "category": CATEGORIES,
    "grade": GRADES_WITH_UNKNOWN,
}
assert set(TARGET_GRADES) <= set(GRADES_WITH_UNKNOWN)


def _fields(codes: Iterable[Code]) -> tuple[str, ...]:
    return tuple(
        counter_field(code.name, *labels)
        for code in codes
        for labels in itertools.product(*(_DOMAINS[label] for label in code.labels))
    )


# Every counter field that can become a sample, in a fixed order: a shard's figures are
# kept as a list of numbers in this order (a field outside the vocabulary is never
# exported, so not kept), and a source's are their column sums.
BUCKET_FIELDS = _fields(BUCKET_COUNTERS)
GAUGE_FIELDS = _fields(GAUGES)
_versions = itertools.count()


def _vector(raw: Mapping[str, Any], fields: Sequence[str]) -> list[int]:
    """``raw`` (read.lua's numbers, or digit strings from 10^14 on) in ``fields``' order."""
    out = [raw.get(f, 0) for f in fields]
    if set(map(type, out)) - {int}:
        out = [int(n) for n in out]
    return out


def _counter(fields: Sequence[str], vectors: Sequence[list[int]]) -> Counter[str]:
    sums = [sum(column) for column in zip(*vectors, strict=True)] if vectors else []
    return Counter({f: n for f, n in zip(fields, sums, strict=False) if n})


@dataclass(frozen=True)
class _Shard:
    """What was read of one shard, and under which probe, window hour and window end."""

    key: tuple[Any, ...]  # ShardProbe.key
    probe: ShardProbe
    totals: list[int]
    gauges: list[int]
    oldest: dict[str, Any]
    hour: int
    windows: dict[str, list[int]]
    windows_version: int
    past_end: float
    past: dict[str, Any]
    state_version: int


@dataclass
class _Source:
    windows_key: tuple[int, ...]
    windows: dict[str, Counter[str]]
    state_key: tuple[Any, ...]
    figures: SourceFigures


@dataclass
class _Pending:
    """A shard to read this scrape: which parts, and what to keep of the old entry."""

    source: str
    partition: int
    probe: ShardProbe
    old: _Shard | None
    hour: int
    end: float
    windows: bool
    past: bool
    reply: dict[str, Any] = field(default_factory=dict)

    @property
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
        self.shards: dict[tuple[str, int], _Shard] = {}
        self.by_source: dict[str, _Source] = {}
        self.shard_reads = 0  # shards read (in part or whole), for tests and the bench

    def read_sources(self, sources: Sequence[str], now_s: float) -> list[SourceFigures]:
        parts = self.partitions_of(sources)
        shards = [(s, p) for s in sources for p in parts[s]]
        probes = dict(
            zip(shards, self.probe([keys.shard(self.prefix, s, p) for s, p in shards]), strict=True)
        )
        ends: dict[str, float] = {}
        pending: list[_Pending] = []
        for source in sources:
            marks = [m for p in parts[source] if (m := probes[source, p].watermark_ms) is not None]
            end = window_end(source, now_s, max(marks) / 1000 if marks else None)
            ends[source] = end
            for p in parts[source]:
                probe, old = probes[source, p], self.shards.get((source, p))
                job = _Pending(source, p, probe, old, hour_bucket(end), end, True, True)
                if not job.fresh and old is not None:
                    job.windows = old.hour != job.hour
                    job.past = old.past_end != end
                    if not (job.windows or job.past):
                        continue
                pending.append(job)
        calls = [
            (keys.shard(self.prefix, j.source, j.partition), self._request(j)) for j in pending
        ]
        for job, reply in zip(pending, self.read_shards(calls), strict=True):
            job.reply = reply
        # Everything read: only now is anything kept.
        self.shard_reads += len(pending)
        for job in pending:
            self.shards[job.source, job.partition] = self._entry(job)
        for shard in set(self.shards) - set(shards):
            del self.shards[shard]
        for source in set(self.by_source) - set(sources):
            del self.by_source[source]
        return [self._figures(s, parts[s], ends[s]) for s in sources]

    def _request(self, job: _Pending) -> str:
        fresh = job.fresh
        return read_request(
            windows_end_s=job.end if job.windows else None,
            windows=self.windows,
            totals=fresh,
            gauges=fresh,
            past_end_s=job.end if job.past else None,
            oldest=fresh,
        )

    def _entry(self, job: _Pending) -> _Shard:
        doc = job.reply
        windows = (
            {name: _vector(doc["windows"][name], BUCKET_FIELDS) for name in self.windows}
            if job.windows
            else None
        )
        past = doc["past"] if job.past else None
        if job.fresh or job.old is None:
            assert windows is not None and past is not None
            version = next(_versions)
            return _Shard(
                key=job.probe.key,
                probe=job.probe,
                totals=_vector(doc["windows"][TOTALS], BUCKET_FIELDS),
                gauges=_vector(doc["now"], GAUGE_FIELDS),
                oldest=doc["oldest"],
                hour=job.hour,
                windows=windows,
                windows_version=version,
                past_end=job.end,
                past=past,
                state_version=version,
            )
        old = job.old
        if windows is not None:
            old = replace(old, hour=job.hour, windows=windows, windows_version=next(_versions))
        if past is not None:
            old = replace(old, past_end=job.end, past=past, state_version=next(_versions))
        return old

    def _figures(self, source: str, partitions: Sequence[int], end: float) -> SourceFigures:
        entries = [self.shards[source, p] for p in partitions]
        cached = self.by_source.get(source)
        windows_key = tuple(e.windows_version for e in entries)
        state_key = (*(e.state_version for e in entries), *(e.key for e in entries), end)
        unchanged = cached is not None and cached.windows_key == windows_key
        if cached is not None and unchanged and cached.state_key == state_key:
            return cached.figures
        if cached is not None and unchanged:
            windows = cached.windows
        elif not entries:  # no shard yet: no window at all, as a fresh read
            windows = {}
        else:
            windows = {
                name: _counter(BUCKET_FIELDS, [e.windows[name] for e in entries])
                for name in self.windows
            }
            windows[TOTALS] = _counter(BUCKET_FIELDS, [e.totals for e in entries])
        marks = [m for e in entries if (m := e.probe.watermark_ms) is not None]
        writes = [w for e in entries if (w := e.probe.last_write_ms) is not None]
        figures = SourceFigures(
            source=source,
            watermark_s=max(marks) / 1000 if marks else None,
            window_end_s=end,
            last_processed_s=max(writes) / 1000 if writes else None,
            windows=windows,
            now=_counter(GAUGE_FIELDS, [e.gauges for e in entries]),
        )
        for e in entries:
            add_meta(figures, e.probe.meta)
            add_past(figures, e.past)
            add_oldest(figures, e.oldest)
        self.by_source[source] = _Source(windows_key, windows, state_key, figures)
        return figures
