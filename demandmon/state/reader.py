"""Read a source's figures from Redis: windows summed server-side per shard, then summed
across shards here. Stateless, so any number of exporters agree.

Besides ``read`` (one source, everything), the parts a caller that keeps figures between
reads needs (demandmon/exporter/cache.py): every source's shards, each shard's probe (what
tells whether it was written since) and a read of chosen parts of many shards, each in one
pipelined round trip. Every call touches one shard's keys (one hash tag), so all of it
works on a Redis Cluster too."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from demandmon.clients import SyncRedis
from demandmon.state import keys, lua
from demandmon.state.record import (
    META_FIRST_CREATED,
    META_LAST_CREATED,
    META_LAST_WRITE,
    META_WATERMARK,
    SHARD_POSITION,
    shard_watermark,
)
from demandmon.state.scripts import run_sync
from demandmon.state.windows import HOUR, WINDOWS, hour_bucket, window_buckets
from schemas.vocabulary import ATTENDANCE_TARGET_S, BCU_CODES, LIVE_SOURCE, UNKNOWN_SOURCE

READ_LUA = lua.script("read.lua")
AGE = "age"  # the shard's incidents by time (keys.SHARD_KEYS), counted by the probe
assert AGE in keys.SHARD_KEYS


def window_plan(end_s: float, windows: Mapping[str, int]) -> dict[str, list[Any]]:
    """read.lua's ``segments`` and ``windows`` for windows ending at ``end_s``: the windows
    nest (each is the hours up to the same last hour), so the script reads each bucket once
    and a window is the sum of the first n segments. A segment is whole days where it can
    be, hours at its edges (``windows.window_buckets``)."""
    last = hour_bucket(end_s)
    segments: list[list[list[int]]] = []
    names: list[list[Any]] = []
    done = 0
    for name, hours in sorted(windows.items(), key=lambda item: item[1]):
        if hours > done:
            span = window_buckets(last - done * HOUR, hours - done)
            segments.append([list(span.hours), list(span.days)])
            done = hours
        names.append([name, len(segments)])
    return {"segments": segments, "windows": names}


def past_thresholds(end_s: float) -> list[list[Any]]:
    """read.lua's ``past``: per BCU and target grade, open and not attended incidents
    created before the window end minus the grade's target are past it."""
    return [
        [bcu, grade, int((end_s - target) * 1000)]
        for bcu in BCU_CODES
        for grade, target in ATTENDANCE_TARGET_S.items()
    ]


def read_request(
    *,
    windows_end_s: float | None = None,
    windows: Mapping[str, int] = WINDOWS,
    totals: bool = False,
    gauges: bool = False,
    meta: bool = False,
    past_end_s: float | None = None,
    oldest: bool = False,
    by_bucket: Mapping[str, Any] | None = None,  # these buckets' own sums (read.lua)
    flat: bool = False,  # bucket sums, all and now as Redis holds them (field, n, ...)
) -> str:
    """read.lua's argument: the parts of a shard to read (nothing unless asked)."""
    none: dict[str, list[Any]] = {"segments": [], "windows": []}
    plan = window_plan(windows_end_s, windows) if windows_end_s is not None else none
    request = {
        **plan,
        "by_bucket": by_bucket or False,
        "flat": flat,
        "all": totals,
        "now": gauges,
        "meta": meta,
        "past": past_thresholds(past_end_s) if past_end_s is not None else [],
        "oldest": list(BCU_CODES) if oldest else [],
    }
    return orjson.dumps(request).decode()


def window_end(source: str, now_s: float, watermark_s: float | None) -> float:
    """Live windows end now, so a silent feed shows falling figures; replays end at their
    own watermark, so a replay at any speed shows the same numbers."""
    return now_s if source == LIVE_SOURCE or watermark_s is None else watermark_s


@dataclass(frozen=True)
class ShardProbe:
    """What tells whether a shard was written: its whole meta hash and how many incidents
    it keeps. With apply.lua as it is, every call that changes what the exporter reads
    changes this: a batch with entries moves ``lw`` (and ``off`` when anything in it is
    new, ``wm`` with newer events, the counters); a call with an empty batch only
    prunes, and it moves ``hw`` when the horizon moves (bucket deletions follow the
    horizon alone) and removes every incident it prunes from ``age`` (gauges, open and
    waiting lists change only for those). tests/integration/test_exporter_cache.py holds
    the script to that."""

    meta: dict[str, str]
    incidents: int

    @property
    def key(self) -> tuple[tuple[tuple[str, str], ...], int]:
        return tuple(sorted(self.meta.items())), self.incidents

    @property
    def watermark_ms(self) -> int | None:
        return shard_watermark(self.meta.get(META_WATERMARK))

    @property
    def last_write_ms(self) -> int | None:
        raw = self.meta.get(META_LAST_WRITE)
        return None if raw is None else int(raw)


@dataclass
class SourceFigures:
    """A source's raw counters summed across its shards: each window's bucket counters
    and the gauges (read them by name with ``record.Counts``), and the meta fields that
    add up (``record.EventCounts``); the shards' positions and times, decoded."""

    source: str
    watermark_s: float | None
    window_end_s: float
    last_processed_s: float | None
    windows: dict[str, Counter[str]] = field(default_factory=dict)
    now: Counter[str] = field(default_factory=Counter)
    meta: Counter[str] = field(default_factory=Counter)
    past_target: Counter[str] = field(default_factory=Counter)
    oldest_unattended_i_created_s: dict[str, float] = field(default_factory=dict)
    oldest_attended_i_created_s: dict[str, float] = field(default_factory=dict)
    last_long_wait_handover_s: dict[str, float] = field(default_factory=dict)
    first_created_s: float | None = None
    last_created_s: float | None = None

    @property
    def known(self) -> bool:
        return self.watermark_s is not None


def _decode(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class StateReader:
    def __init__(self, client: SyncRedis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self.script = client.register_script(READ_LUA)

    def sources(self) -> list[str]:
        return sorted(_decode(s) for s in self.client.smembers(keys.sources(self.prefix)))

    def exported_sources(self) -> list[str]:
        """The sources to export: those with state that are ``live``, registered, or the
        reserved ``unknown`` (rejections of unusable source headers). A deleted source's
        series vanish at once, even while leftovers of its state are being removed."""
        pipe = self.client.pipeline(transaction=False)
        pipe.smembers(keys.sources(self.prefix))
        pipe.smembers(keys.registry(self.prefix))
        with_state, registered = pipe.execute()
        allowed = {_decode(s) for s in registered} | {LIVE_SOURCE, UNKNOWN_SOURCE}
        return sorted(name for s in with_state if (name := _decode(s)) in allowed)

    def partitions(self, source: str) -> list[int]:
        members = self.client.smembers(keys.partitions(self.prefix, source))
        return sorted(int(_decode(p)) for p in members)

    def read(
        self, source: str, now_s: float, windows: dict[str, int] | None = None, totals: bool = True
    ) -> SourceFigures:
        shards = [keys.shard(self.prefix, source, p) for p in self.partitions(source)]
        pipe = self.client.pipeline(transaction=False)
        for base in shards:
            pipe.hmget(base + keys.META, META_WATERMARK, META_LAST_WRITE)
        marks = [(w, lw) for w, lw in pipe.execute()]
        wms = [wm for w, _ in marks if (wm := shard_watermark(w)) is not None]
        lws = [int(lw) for _, lw in marks if lw is not None]
        watermark = max(wms) / 1000 if wms else None
        end = window_end(source, now_s, watermark)
        figures = SourceFigures(
            source=source,
            watermark_s=watermark,
            window_end_s=end,
            last_processed_s=max(lws) / 1000 if lws else None,
        )
        arg = read_request(
            windows_end_s=end,
            windows=windows if windows is not None else WINDOWS,
            totals=totals,
            gauges=True,
            meta=True,
            past_end_s=end,
            oldest=True,
        )
        for raw in run_sync(self.client, self.script, [([base], [arg]) for base in shards]):
            self._absorb(figures, orjson.loads(raw))
        return figures

    def read_sources(self, sources: Sequence[str], now_s: float) -> list[SourceFigures]:
        """Each source's figures at ``now_s``, read afresh (the exporter's reader keeps
        what has not changed: demandmon/exporter/cache.py)."""
        return [self.read(source, now_s) for source in sources]

    def partitions_of(self, sources: Sequence[str]) -> dict[str, list[int]]:
        """Each source's partitions (its shards), in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        for source in sources:
            pipe.smembers(keys.partitions(self.prefix, source))
        replies = pipe.execute()
        return {
            source: sorted(int(_decode(p)) for p in members)
            for source, members in zip(sources, replies, strict=True)
        }

    def probe(self, shards: Sequence[str]) -> list[ShardProbe]:
        """Each shard's probe (``ShardProbe``), by shard key prefix, in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        for base in shards:
            pipe.hgetall(base + keys.META)
            pipe.zcard(base + AGE)
        replies = pipe.execute()
        return [
            ShardProbe(
                {_decode(k): _decode(v) for k, v in replies[2 * i].items()},
                int(replies[2 * i + 1]),
            )
            for i in range(len(shards))
        ]

    def read_shards(self, calls: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        """read.lua once per (shard key prefix, ``read_request``), decoded, in order: in
        one round trip on one Redis."""
        if not calls:
            return []
        replies = run_sync(self.client, self.script, [([base], [arg]) for base, arg in calls])
        return [orjson.loads(raw) for raw in replies]

    @staticmethod
    def _absorb(figures: SourceFigures, doc: dict[str, dict[str, object]]) -> None:
        for name, fields in doc["windows"].items():
            acc = figures.windows.setdefault(name, Counter())
            for f, v in fields.items():  # type: ignore[attr-defined]
                acc[f] += int(v)
        for f, v in doc["now"].items():
            figures.now[f] += int(str(v))
        add_meta(figures, doc["meta"])
        add_past(figures, doc["past"])
        add_oldest(figures, doc["oldest"])


def add_meta(figures: SourceFigures, meta: Mapping[str, object]) -> None:
    """One shard's meta fields into a source's: counters add up, creation times span."""
    for f, v in meta.items():
        if f == META_FIRST_CREATED:
            c0 = int(str(v)) / 1000
            if figures.first_created_s is None or c0 < figures.first_created_s:
                figures.first_created_s = c0
        elif f == META_LAST_CREATED:
            c1 = int(str(v)) / 1000
            if figures.last_created_s is None or c1 > figures.last_created_s:
                figures.last_created_s = c1
        elif f not in SHARD_POSITION:
            figures.meta[f] += int(str(v))


def add_past(figures: SourceFigures, past: Mapping[str, object]) -> None:
    for f, v in past.items():
        figures.past_target[f] += int(str(v))


def _keep(into: dict[str, float], bcu: str, ms: object, latest: bool = False) -> None:
    t = int(float(str(ms))) / 1000
    current = into.get(bcu)
    if current is None or (t > current if latest else t < current):
        into[bcu] = t


def add_oldest(figures: SourceFigures, oldest: Mapping[str, Any]) -> None:
    """One shard's read.lua ``oldest`` into a source's, per BCU: open I incidents' earliest
    creation across shards (unattended; attended, not closed), the latest long wait."""
    into = {
        "u": figures.oldest_unattended_i_created_s,
        "a": figures.oldest_attended_i_created_s,
        "h": figures.last_long_wait_handover_s,
    }
    for bcu, found in oldest.items():
        for part, ms in found.items():
            _keep(into[part], bcu, ms, latest=part == "h")
