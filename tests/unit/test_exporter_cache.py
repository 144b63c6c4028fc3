"""The exporter's reader (demandmon/exporter/cache.py): what a scrape reuses and when it
reads again, over shards kept in memory and read the way read.lua reads them. That the
real apply script keeps the rule's promise is tests/integration/test_exporter_cache.py."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from demandmon.exporter.cache import CachedStateReader
from demandmon.exporter.families import source_samples
from demandmon.state import keys
from demandmon.state.reader import ShardProbe, SourceFigures, window_plan
from demandmon.state.record import (
    CODES,
    META_APPLIED,
    META_LAST_WRITE,
    META_OFFSET,
    META_WATERMARK,
    CounterName,
)
from demandmon.state.windows import DAY, HOUR, WINDOWS, day_bucket, hour_bucket, window_range
from schemas.vocabulary import MENTAL_HEALTH

PREFIX = "t"
# 2023-11-28 10:20 UTC, a replay's watermark or the wall clock.
T0 = 1_701_165_600.0 + 20 * 60
INCIDENTS = "|".join((CODES["incidents"].code, "SE", MENTAL_HEALTH))
_tokens = (f"t{n}" for n in itertools.count())  # apply.lua's: none ever repeats


def field_of(name: CounterName, *labels: str) -> str:
    return "|".join((CODES[name].code, *labels))


@dataclass
class Shard:
    """One shard's keys, as the apply script leaves them."""

    meta: dict[str, str] = field(default_factory=dict)
    incidents: int = 0
    hours: dict[int, Counter[str]] = field(default_factory=dict)
    days: dict[int, Counter[str]] = field(default_factory=dict)
    totals: Counter[str] = field(default_factory=Counter)
    gauges: Counter[str] = field(default_factory=Counter)
    waiting: dict[str, list[int]] = field(default_factory=dict)  # "bcu:grade" -> created ms
    # The bucket versions ('h:<start>', 'd:<start>' -> token: apply.lua's bv) and those of
    # their days (bd); None: a shard written before apply.lua kept them.
    versions: dict[str, str] | None = field(default_factory=dict)
    day_versions: dict[str, str] = field(default_factory=dict)

    def write(self, created_s: float, name: str = INCIDENTS, n: int = 1) -> None:
        """An incident created at ``created_s`` counted, as an apply does: the buckets
        (and their versions), and the meta it always moves."""
        hour, day = hour_bucket(created_s), day_bucket(created_s)
        for bucket in (
            self.hours.setdefault(hour, Counter()),
            self.days.setdefault(day, Counter()),
            self.totals,
        ):
            bucket[name] += n
        if self.versions is not None:
            token = next(_tokens)
            self.versions.update({f"h:{hour}": token, f"d:{day}": token})
            self.day_versions[f"d:{day}"] = token
        self.incidents += 1
        offset = int(self.meta.get(META_OFFSET, "-1")) + 1
        watermark = max(int(self.meta.get(META_WATERMARK, "-1")), int(created_s * 1000))
        self.meta.update(
            {
                META_OFFSET: str(offset),
                META_WATERMARK: str(watermark),
                META_LAST_WRITE: str(offset),
                META_APPLIED: str(offset + 1),
            }
        )

    def prune_hour(self, hour: int) -> None:
        """The hour bucket deleted, as retention deletes it (its day stays)."""
        del self.hours[hour]
        if self.versions is not None:
            del self.versions[f"h:{hour}"]
            self.day_versions[f"d:{day_bucket(hour)}"] = next(_tokens)


class Shards(CachedStateReader):
    """The cached reader over in-memory shards; every read.lua call is recorded."""

    def __init__(self) -> None:
        client = cast(Any, type("NoRedis", (), {"register_script": lambda self, _: None})())
        super().__init__(client, PREFIX)
        self.state: dict[tuple[str, int], Shard] = {}
        self.exported: set[str] = set()
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail = False

    def shard(self, source: str, partition: int) -> Shard:
        self.exported.add(source)
        return self.state.setdefault((source, partition), Shard())

    def by_base(self, base: str) -> Shard:
        return next(s for (src, p), s in self.state.items() if keys.shard(PREFIX, src, p) == base)

    def exported_sources(self) -> list[str]:
        return sorted(self.exported)

    def partitions_of(self, sources: Sequence[str]) -> dict[str, list[int]]:
        return {s: sorted(p for src, p in self.state if src == s) for s in sources}

    def probe(self, shards: Sequence[str]) -> list[ShardProbe]:
        return [ShardProbe(dict(s.meta), s.incidents) for s in map(self.by_base, shards)]

    def read_shards(self, calls: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        if self.fail:
            raise ConnectionError("Redis went away")
        replies = []
        for base, arg in calls:
            req = json.loads(arg)
            self.calls.append((base, req))
            replies.append(self.read_lua(self.by_base(base), req))
        return replies

    def read_each(
        self, calls: Sequence[tuple[str, str]], handle: Callable[[int, dict[str, Any]], None]
    ) -> None:
        for i, reply in enumerate(self.read_shards(calls)):
            handle(i, reply)

    @staticmethod
    def read_lua(shard: Shard, req: dict[str, Any]) -> dict[str, Any]:
        """What read.lua answers."""
        out: dict[str, Any] = {"windows": {}, "past": {}, "oldest": {}}
        segments: list[Counter[str]] = []
        for hours, days in req["segments"]:
            segments.append(Counter())
            for h in hours:
                segments[-1].update(shard.hours.get(h, Counter()))
            for d in days:
                segments[-1].update(shard.days.get(d, Counter()))
        for name, n in req["windows"]:
            out["windows"][name] = dict(sum(segments[:n], Counter()))
        if req["by_bucket"]:  # the buckets whose versions moved: the reader adds them up
            out["buckets"], out["days"] = Shards.moved_buckets(shard, req)
        if req["all"]:
            out["windows"]["all"] = dict(shard.totals)
        if req["now"]:
            out["now"] = dict(shard.gauges)
        for bcu, grade, before in req["past"]:
            waiting = shard.waiting.get(f"{bcu}:{grade}", [])
            out["past"][f"{bcu}|{grade}"] = str(sum(1 for c in waiting if c < before))
        return out

    @staticmethod
    def moved_buckets(shard: Shard, req: dict[str, Any]) -> tuple[list[Any], dict[str, str]]:
        """read.lua's ``buckets`` and ``days`` with ``by_bucket``."""
        plan = req["by_bucket"]
        held, held_days = req.get("tokens", []), req.get("held_days", [])
        buckets: list[Any] = []
        days: dict[str, str] = {}
        for k, day in enumerate(plan["days"]):
            version = shard.day_versions.get(day, "")
            if k >= len(held_days) or held_days[k] != version:
                days[day] = version
        for i, (name, k) in enumerate(zip(plan["names"], plan["day"], strict=True)):
            start = int(name[2:])
            counts = (shard.hours if name.startswith("h:") else shard.days).get(start, Counter())
            if shard.versions is None:
                buckets.append([i + 1, False, dict(counts)])
                continue
            day = plan["days"][k - 1]
            mine = held[i] if i < len(held) else None
            if shard.day_versions.get(day, "") == "":  # no day: none of its buckets
                if mine != "":
                    buckets.append([i + 1, "", {}])
            elif mine in (None, "?"):  # not held: read, its own version not looked up
                buckets.append([i + 1, "*", dict(counts)])
            elif day in days and shard.versions.get(name, "") != mine:
                version = shard.versions.get(name, "")
                buckets.append([i + 1, version, dict(counts) if version else {}])
        return buckets, ({} if shard.versions is None else days)

    def reads(self) -> list[tuple[str, set[str]]]:
        """The calls since the last look: (shard, the parts it asked for)."""
        parts = ("all", "now", "past", "oldest")
        seen = [
            (base, {p for p in parts if req[p]} | ({"windows"} if req["by_bucket"] else set()))
            for base, req in self.calls
        ]
        self.calls.clear()
        return seen


def figures(reader: Shards, now_s: float) -> dict[str, SourceFigures]:
    sources = reader.exported_sources()
    return {f.source: f for f in reader.read_sources(sources, now_s)}


def window(fig: SourceFigures, name: str) -> int:
    return fig.windows[name][INCIDENTS]


def base(source: str, partition: int) -> str:
    return keys.shard(PREFIX, source, partition)


def test_nothing_written_nothing_read_and_the_same_objects_come_back() -> None:
    reader = Shards()
    for p in range(3):
        reader.shard("r1", p).write(T0 - 2 * HOUR)
    first = figures(reader, T0)["r1"]
    assert len(reader.reads()) == 3
    again = figures(reader, T0 + 600)["r1"]  # a replay's windows end at its watermark
    assert reader.reads() == []
    assert again is first
    assert window(again, "24h") == 3


def test_a_shard_written_after_a_scrape_is_read_again_and_alone() -> None:
    reader = Shards()
    for p in range(3):
        reader.shard("r1", p).write(T0 - 2 * HOUR)
    figures(reader, T0)
    reader.reads()
    reader.shard("r1", 1).write(T0 - 3 * HOUR)  # the watermark does not move
    fig = figures(reader, T0)["r1"]
    assert reader.reads() == [(base("r1", 1), {"windows", "all", "now", "past", "oldest"})]
    assert window(fig, "24h") == 4 and window(fig, "1h") == 3  # ends at its watermark
    assert fig.windows["all"][INCIDENTS] == 4
    assert fig.meta[META_APPLIED] == 1 + 2 + 1


def test_a_prune_seen_in_the_incidents_count_alone_is_read_again() -> None:
    reader = Shards()
    shard = reader.shard("r1", 0)
    shard.write(T0)
    shard.gauges[field_of("open", "SE", "I")] = 1
    assert figures(reader, T0)["r1"].now[field_of("open", "SE", "I")] == 1
    # An empty batch pruned an open incident: no meta field moved, `age` shrank.
    shard.incidents -= 1
    shard.gauges[field_of("open", "SE", "I")] = 0
    reader.reads()
    assert figures(reader, T0)["r1"].now[field_of("open", "SE", "I")] == 0
    assert len(reader.reads()) == 1


def test_a_replay_end_moved_by_another_shard_rereads_past_then_windows_at_the_hour() -> None:
    reader = Shards()
    reader.shard("r1", 0).write(T0)
    reader.shard("r1", 1).write(T0 - 5 * HOUR)
    reader.shard("r1", 1).waiting["SE:I"] = [int((T0 - 600) * 1000)]
    fig = figures(reader, T0)["r1"]
    assert fig.past_target["SE|I"] == 0  # 10 min old at the end: within I's 15 min
    reader.reads()
    # Shard 0 moves the watermark within the hour: shard 1 only re-counts past target.
    reader.shard("r1", 0).write(T0 + 15 * 60)
    fig = figures(reader, T0)["r1"]
    assert dict(reader.reads()) == {
        base("r1", 0): {"windows", "all", "now", "past", "oldest"},
        base("r1", 1): {"past"},
    }
    assert fig.past_target["SE|I"] == 1 and fig.window_end_s == T0 + 15 * 60
    # Into the next hour: shard 1's windows move too.
    reader.shard("r1", 0).write(T0 + HOUR)
    fig = figures(reader, T0)["r1"]
    assert dict(reader.reads())[base("r1", 1)] == {"windows", "past"}
    assert window(fig, "1h") == 1 and window(fig, "24h") == 4


def test_live_windows_move_when_the_clock_crosses_the_hour() -> None:
    reader = Shards()
    reader.shard("live", 0).write(T0)  # 10:20
    fig = figures(reader, T0 + 60)["live"]
    assert window(fig, "1h") == 1
    reader.reads()
    # Later in the same hour: the live end moves, windows stand, past is counted again.
    later = figures(reader, T0 + 30 * 60)["live"]
    assert reader.reads() == [(base("live", 0), {"past"})]
    assert later.windows is fig.windows and later.window_end_s == T0 + 30 * 60
    # 11:00: nothing was written, yet the 1h window no longer holds the incident.
    moved = figures(reader, T0 + 40 * 60)["live"]
    assert reader.reads() == [(base("live", 0), {"windows", "past"})]
    assert window(moved, "1h") == 0 and window(moved, "24h") == 1


def test_a_deleted_source_vanishes_and_a_new_one_of_its_name_is_read_afresh() -> None:
    reader = Shards()
    reader.shard("r1", 0).write(T0)
    reader.shard("r2", 0).write(T0)
    figures(reader, T0)
    reader.exported.discard("r2")  # deregistered: `sources delete`
    del reader.state["r2", 0]
    assert set(figures(reader, T0)) == {"r1"}
    assert set(reader.shards) == {("r1", 0)} and set(reader.by_source) == {"r1"}
    reader.reads()
    reader.shard("r2", 0).write(T0 - DAY)
    fig = figures(reader, T0)["r2"]
    assert reader.reads() == [(base("r2", 0), {"windows", "all", "now", "past", "oldest"})]
    assert window(fig, "24h") == 1 and fig.meta[META_APPLIED] == 1


def test_a_failed_read_keeps_nothing() -> None:
    reader = Shards()
    reader.shard("r1", 0).write(T0)
    figures(reader, T0)
    reader.shard("r1", 0).write(T0 - HOUR)
    reader.fail = True
    with pytest.raises(ConnectionError):
        figures(reader, T0)
    reader.fail = False
    assert window(figures(reader, T0)["r1"], "24h") == 2


def test_cached_figures_make_the_samples_of_a_fresh_read() -> None:
    reader = Shards()
    for p, hours_ago in enumerate([0, 1, 30, 24 * 8, 24 * 27]):
        reader.shard("r1", p).write(T0 - hours_ago * HOUR)
        reader.shard("r1", p).gauges[field_of("in_custody", "NW")] = p
    figures(reader, T0)
    reader.shard("r1", 2).write(T0 - 3 * HOUR, field_of("s136_detentions", "NW"), 2)
    cached = figures(reader, T0)["r1"]
    fresh = Shards()
    fresh.state, fresh.exported = reader.state, reader.exported
    assert list(source_samples(cached)) == list(source_samples(figures(fresh, T0)["r1"]))


@given(
    end=st.floats(min_value=1.5e9, max_value=2.0e9, allow_nan=False),
    spans=st.lists(st.integers(1, 24 * 40), min_size=1, max_size=5, unique=True),
)
def test_the_window_plan_reads_each_bucket_once_and_tiles_every_window(
    end: float, spans: list[int]
) -> None:
    wanted = {f"w{h}": h for h in spans}
    plan = window_plan(end, wanted)
    covered: list[list[int]] = []
    for hours, days in plan["segments"]:
        segment = list(hours) + [h for d in days for h in range(d, d + DAY, HOUR)]
        covered.append(segment)
    flat = [h for segment in covered for h in segment]
    assert len(flat) == len(set(flat))
    for name, n in plan["windows"]:
        first, last = window_range(end, wanted[name])
        mine = sorted(h for segment in covered[:n] for h in segment)
        assert mine == list(range(first, last + HOUR, HOUR))
    assert [n for _, n in plan["windows"]] == sorted(n for _, n in plan["windows"])
    assert {name for name, _ in plan["windows"]} == set(wanted)


def test_the_plan_of_the_exported_windows_at_a_replay_end_uses_whole_days() -> None:
    end = 1_701_215_999.0  # 2023-11-28T23:59:59Z
    plan = window_plan(end, WINDOWS)
    assert [len(days) for _, days in plan["segments"]] == [0, 0, 6, 21]


def test_a_source_without_shards_has_no_windows_as_a_fresh_read() -> None:
    reader = Shards()
    reader.exported.add("r3")  # registered, nothing applied yet
    fig = figures(reader, T0)["r3"]
    assert fig.windows == {} and fig.watermark_s is None and fig.window_end_s == T0


@pytest.mark.parametrize("end", [T0, T0 + 3 * HOUR, 0.0, day_bucket(T0) + 23.5 * HOUR])
def test_which_segments_a_window_adds_up_does_not_move_with_its_end(end: float) -> None:
    # The reader adds read.lua's segment sums up by one nesting, worked out once.
    reader = Shards()
    assert window_plan(end, reader._asked)["windows"] == reader._nesting


def test_the_hour_of_the_window_end_and_the_one_before_are_kept_for_expected_demand() -> None:
    reader = Shards()
    reader.shard("live", 0).write(T0 - 5 * 60, n=2)  # this hour (T0 is 10:20)
    reader.shard("live", 1).write(T0 - 50 * 60)  # 09:30: the hour before
    reader.shard("live", 1).write(T0 - 3 * HOUR)  # in neither
    figures(reader, T0)
    this = hour_bucket(T0)
    hours = reader.hour_counts("live")
    assert set(hours) == {this, this - HOUR}
    assert hours[this][INCIDENTS] == 2 and hours[this - HOUR][INCIDENTS] == 1
    # An hour later (nothing written: the windows are read again as the hour moved).
    figures(reader, T0 + HOUR)
    later = reader.hour_counts("live")
    assert later[this + HOUR] == Counter() and later[this][INCIDENTS] == 2
    assert reader.hour_counts("gone") == {}


def held(reader: Shards, source: str, partition: int) -> dict[str, Any]:
    """The buckets the reader holds of a shard, by name."""
    return dict(reader.shards[source, partition].windows.buckets.held)


def test_a_written_bucket_is_read_again_and_the_others_are_reused() -> None:
    reader = Shards()
    shard = reader.shard("r1", 0)
    for hours_ago in (0, 1, 5, 30, 24 * 10):
        shard.write(T0 - hours_ago * HOUR)
    figures(reader, T0)  # read without their own versions: they stand while their days do
    assert {b.version for b in held(reader, "r1", 0).values()} == {"*", ""}  # "": no day
    shard.write(T0 - 5 * HOUR, n=2)  # today's buckets are looked up, and read
    figures(reader, T0)
    today = f"d:{day_bucket(T0)}"
    versions = {name: b.version for name, b in held(reader, "r1", 0).items()}
    assert all(v != "*" for n, v in versions.items() if day_bucket(int(n[2:])) == day_bucket(T0))
    assert today not in versions  # not a window's bucket: today's hours are
    before = held(reader, "r1", 0)
    shard.write(T0 - 5 * HOUR)  # the 05:20 hour and its day move, nothing else
    fig = figures(reader, T0)["r1"]
    after = held(reader, "r1", 0)
    moved = {name for name in after if after[name] is not before[name]}
    assert moved == {f"h:{hour_bucket(T0 - 5 * HOUR)}"}  # its day is not a window's bucket
    assert window(fig, "24h") == 3 + 3 and window(fig, "7d") == 4 + 3
    assert window(fig, "28d") == 5 + 3 and fig.windows["all"][INCIDENTS] == 8


def test_a_write_outside_every_window_moves_all_alone() -> None:
    reader = Shards()
    shard = reader.shard("r1", 0)
    shard.write(T0)
    figures(reader, T0)
    shard.write(T0 - 30 * DAY)  # kept (retention is longer than 28 days), in no window
    fig = figures(reader, T0)["r1"]
    assert window(fig, "28d") == 1 and fig.windows["all"][INCIDENTS] == 2


def test_a_pruned_bucket_vanishes_from_the_windows() -> None:
    reader = Shards()
    shard = reader.shard("r1", 0)
    shard.write(T0 - 3 * HOUR)
    shard.write(T0 - 2 * HOUR)
    assert window(figures(reader, T0)["r1"], "24h") == 2
    shard.prune_hour(hour_bucket(T0 - 3 * HOUR))  # the day bucket keeps it, hours not
    shard.incidents -= 1
    fig = figures(reader, T0)["r1"]
    assert window(fig, "24h") == 1 and f"h:{hour_bucket(T0 - 3 * HOUR)}" in held(reader, "r1", 0)
    assert held(reader, "r1", 0)[f"h:{hour_bucket(T0 - 3 * HOUR)}"].version == ""


def test_a_shard_without_versions_has_every_bucket_read_at_every_look() -> None:
    reader = Shards()
    shard = reader.shard("r1", 0)
    shard.versions = None  # written by an apply script that kept none
    shard.write(T0 - HOUR)
    figures(reader, T0)
    first = held(reader, "r1", 0)
    shard.write(T0 - 2 * DAY)
    fig = figures(reader, T0)["r1"]
    again = held(reader, "r1", 0)
    assert all(again[name] is not first[name] for name in first)
    assert all(bucket.version is None for bucket in again.values())
    assert window(fig, "24h") == 1 and window(fig, "7d") == 2
