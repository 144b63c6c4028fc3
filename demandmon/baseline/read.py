"""Reading expected demand's hour buckets from Redis, and what a scrape may reuse.

Per shard, one hour_sums.lua call sums the groups of hour buckets asked for (one hash
tag per call, so it runs on a Redis Cluster too); the shards' sums are added up here and
decoded through ``record.Counts``. A source needs, at its window end: the current hour
and the one before (this week), and per past week the same hour, the one before, the 23
after and the 24th after: 4 x 26 + 2 hour buckets. The exporter's reader has just read this
week's two with the windows and hands them over (``HourSums``' ``known``), so they cost no
read of their own.

What is kept between scrapes (``BaselineCache``), per source:

* nothing is read when the source's ``figures.windows`` is the very object of the last
  scrape: the exporter's reader (demandmon/exporter/cache.py) hands it back only when no
  shard of the source was written and its window hour did not move, so no hour bucket
  changed; the figures are worked out again at the new window end (live's moves with the
  clock), or handed back as they were when that did not move either;
* otherwise this week's two hours are read again, and the past weeks too when the window
  end's hour moved or they were read over ``refresh_s`` (60 s) ago: they change only
  through late events, so a replay being written does not re-read them every scrape.

A failed read keeps nothing of what it read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import orjson
from numpy.typing import NDArray

from demandmon.baseline.expected import (
    NEXT_HOURS,
    WEEK,
    WEEKS,
    Baseline,
    PastHours,
    Vector,
    baseline,
    elapsed,
    series_of,
    weeks_with_data,
)
from demandmon.state import keys, lua
from demandmon.state.reader import SourceFigures, StateReader
from demandmon.state.record import Counts, counter_field
from demandmon.state.scripts import Call, run_sync
from demandmon.state.windows import HOUR, hour_bucket
from schemas.vocabulary import BCU_CODES, CATEGORIES, I_GRADE

HOUR_SUMS_LUA: Final = lua.script("hour_sums.lua")
REFRESH_S: Final = 60.0
# The counters expected demand reads, per BCU: incidents by category, I-grade, s136.
FIELDS: Final[tuple[str, ...]] = tuple(
    f
    for bcu in BCU_CODES
    for f in (
        *(counter_field("incidents", bcu, cat) for cat in CATEGORIES),
        counter_field("graded", bcu, I_GRADE),
        counter_field("s136_detentions", bcu),
    )
)
Groups = list[list[int]]  # groups of hour bucket starts, each summed into one figure
# A source -> hour buckets' counters (by hour start) already read, summed across shards.
KnownHours = Callable[[str], Mapping[int, Mapping[str, int]]]


def past_groups(end_s: float) -> Groups:
    """Per week back, 1..WEEKS: the hour before, the hour, the 23 after, the 24th after
    (``PastHours``' fields, in that order)."""
    groups: Groups = []
    for w in range(1, WEEKS + 1):
        cur = hour_bucket(end_s) - w * WEEK
        after = [cur + k * HOUR for k in range(1, NEXT_HOURS)]
        groups += [[cur - HOUR], [cur], after, [cur + NEXT_HOURS * HOUR]]
    return groups


def current_groups(end_s: float) -> Groups:
    """This week: the hour holding the window end, and the one before."""
    cur = hour_bucket(end_s)
    return [[cur], [cur - HOUR]]


def past_hours(sums: Sequence[Vector]) -> PastHours:
    """``past_groups``' sums as one matrix per field (rows: weeks back)."""
    rows = np.array(sums).reshape(WEEKS, 4, -1)
    return PastHours(prev=rows[:, 0], cur=rows[:, 1], next23=rows[:, 2], hour24=rows[:, 3])


def _series(row: NDArray[np.int64]) -> Vector:
    """One group's sums of ``FIELDS`` as its series."""
    return series_of(Counts(dict(zip(FIELDS, map(int, row), strict=True))))


class HourSums:
    """Sums of groups of hour buckets per source, across its shards, in one round trip;
    a group of one hour that ``known(source)`` holds (the exporter's reader has just read
    the hour of the window end and the one before) is taken from there."""

    def __init__(self, reader: StateReader, known: KnownHours | None = None) -> None:
        self.reader = reader
        self.known = known
        self.script = reader.client.register_script(HOUR_SUMS_LUA)

    def read(self, wanted: Mapping[str, Groups]) -> dict[str, list[Vector]]:
        """Per source, one vector per group asked for (its series, ``series_of``)."""
        out: dict[str, list[Vector | None]] = {
            s: [self._known(s, group) for group in groups] for s, groups in wanted.items()
        }
        asked = {s: [g for g, v in zip(wanted[s], out[s], strict=True) if v is None] for s in out}
        sources = [s for s in asked if asked[s]]
        parts = self.reader.partitions_of(sources) if sources else {}
        calls: list[Call] = []
        for source in sources:
            arg = orjson.dumps({"fields": FIELDS, "groups": asked[source]}).decode()
            calls += [([keys.shard(self.reader.prefix, source, p)], [arg]) for p in parts[source]]
        replies = iter(run_sync(self.reader.client, self.script, calls) if calls else [])
        for source in sources:
            totals = np.zeros((len(asked[source]), len(FIELDS)), dtype=np.int64)
            for _ in parts[source]:
                totals += np.array(orjson.loads(next(replies)), dtype=np.int64)
            read = iter(totals)
            out[source] = [v if v is not None else _series(next(read)) for v in out[source]]
        return {s: [v for v in vectors if v is not None] for s, vectors in out.items()}

    def _known(self, source: str, group: list[int]) -> Vector | None:
        if self.known is None or len(group) != 1:
            return None
        counts = self.known(source).get(group[0])
        return None if counts is None else series_of(Counts(counts))


@dataclass(frozen=True)
class _Kept:
    """What was read for a source, under which windows object, hour and time."""

    windows: object  # the SourceFigures.windows the hours were read under
    hour: int
    past: PastHours
    past_read_s: float
    now_cur: Vector
    now_prev: Vector
    end_s: float
    weeks: int
    result: Baseline


class BaselineCache:
    """Each exported source's ``Baseline`` at its window end, reading only what may have
    changed (the module's docstring). For one exporter; the caller serialises scrapes."""

    def __init__(
        self,
        sums: HourSums,
        clock: Callable[[], float] = time.monotonic,
        refresh_s: float = REFRESH_S,
    ) -> None:
        self.sums = sums
        self.clock = clock
        self.refresh_s = refresh_s
        self.kept: dict[str, _Kept] = {}
        self.reads = 0  # sources read (in part or whole), for tests and the bench

    def baselines(self, figures: Sequence[SourceFigures]) -> dict[str, Baseline]:
        now = self.clock()
        wanted: dict[str, Groups] = {}
        for fig in figures:
            old = self.kept.get(fig.source)
            hour = hour_bucket(fig.window_end_s)
            if old is not None and old.windows is fig.windows and old.hour == hour:
                continue
            groups = current_groups(fig.window_end_s)
            if old is None or old.hour != hour or now - old.past_read_s >= self.refresh_s:
                groups += past_groups(fig.window_end_s)
            wanted[fig.source] = groups
        sums = self.sums.read(wanted) if wanted else {}
        kept = {fig.source: self._keep(fig, sums.get(fig.source), now) for fig in figures}
        # Everything read: only now is anything kept (and a source gone is forgotten).
        self.reads += len(wanted)
        self.kept = kept
        return {source: k.result for source, k in kept.items()}

    def _keep(self, fig: SourceFigures, sums: list[Vector] | None, now: float) -> _Kept:
        old = self.kept.get(fig.source)
        weeks = weeks_with_data(fig.window_end_s, fig.first_created_s)
        if sums is None:
            assert old is not None  # only a source read before is not read again
            if old.end_s == fig.window_end_s and old.weeks == weeks:
                return old
            now_cur, now_prev, past, past_read_s = (
                old.now_cur,
                old.now_prev,
                old.past,
                old.past_read_s,
            )
        else:
            now_cur, now_prev = sums[0], sums[1]
            if len(sums) > 2:
                past, past_read_s = past_hours(sums[2:]), now
            else:
                assert old is not None
                past, past_read_s = old.past, old.past_read_s
        f = elapsed(fig.window_end_s)
        return _Kept(
            windows=fig.windows,
            hour=hour_bucket(fig.window_end_s),
            past=past,
            past_read_s=past_read_s,
            now_cur=now_cur,
            now_prev=now_prev,
            end_s=fig.window_end_s,
            weeks=weeks,
            result=baseline(past, now_cur, now_prev, f, weeks),
        )
