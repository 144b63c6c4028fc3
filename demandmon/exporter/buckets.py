"""A shard's hour and day buckets as the exporter's reader keeps them between scrapes,
each with the version apply.lua gave it when it last wrote it, and the windows added up
from them here (demandmon/exporter/cache.py).

apply.lua stamps every bucket it writes with a token that never repeats (the shard's
``bv`` hash), and every day any bucket of which it writes or deletes (``bd``). read.lua
(``by_bucket``) is handed the versions held of the buckets the windows add up and of
their days, and answers the sums of only the buckets whose day's version moved and whose
own did too (written since, or no longer there), and of those not held (new to the
windows: read without their own version, they stand while their day's does). The
windows nest (``reader.window_plan``): they are the running sums of the
segments, a segment the sum of its buckets. While the windows end in the same hour, a
segment moves by what its buckets moved (new minus held, exact in int64); when the hour
moves, the segments are added up again from the buckets held.

A bucket is kept sparse (the fields it has, and their counts), as Redis holds it."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import numpy as np
from numpy.typing import NDArray

from demandmon.exporter.vectors import BUCKETS, Layout, Vector
from demandmon.state.windows import DAY, HOUR

# A version no bucket has: sent for a bucket not held (or held from a shard without
# versions), so read.lua reads it. read.lua answers ``UNLOOKED`` for a bucket it read
# without its own version: it stands while its day's version does.
UNKNOWN, UNLOOKED = "?", "*"
WIDTH = len(BUCKETS.fields)
_versions = itertools.count()
# Read besides the windows: the hour holding the window end, and it with the hour before,
# which expected demand needs (the reader's ``hour_counts``).
THIS_HOUR, TWO_HOURS = "this hour", "two hours"
HOURS = {THIS_HOUR: 1, TWO_HOURS: 2}


def flat_vector(layout: Layout, raw: Sequence[str] | Mapping[str, Any]) -> Vector:
    """read.lua's ``flat`` reply (HGETALL's [field, "n", ...]; ``{}`` when empty: cjson
    writes an empty table so) as a vector: Redis's own digit strings, exact in int64."""
    if isinstance(raw, Mapping):
        return layout.vector(raw)
    if not raw:
        return layout.vector({})
    out = np.zeros(layout.spill + 1, dtype=np.int64)
    names = raw[0::2]
    at = np.fromiter(map(layout.index.get, names, repeat(layout.spill)), np.intp, len(names))
    out[at] = np.array(raw[1::2], dtype=np.int64)
    return out[: layout.spill]


@dataclass(frozen=True)
class Plan:
    """Every bucket the windows ending in one hour add up, in read.lua's order (each
    segment's hours, then its days), the segment each belongs to, and their days."""

    hour: int
    names: tuple[str, ...]
    segment: tuple[int, ...]
    segments: int
    days: tuple[str, ...]  # each day any of them is in, once
    day: tuple[int, ...]  # each bucket's day: its place in ``days``, from 1

    @classmethod
    def of(cls, hour: int, segments: Sequence[Sequence[Sequence[int]]]) -> Plan:
        """From ``window_plan(end)["segments"]``: [[hour starts], [day starts]] each."""
        names: list[str] = []
        owner: list[int] = []
        days: dict[str, int] = {}
        day: list[int] = []
        for s, (hours, whole) in enumerate(segments):
            for start, name in [(h, f"h:{h}") for h in hours] + [(d, f"d:{d}") for d in whole]:
                names.append(name)
                owner.append(s)
                day.append(days.setdefault(f"d:{start - start % DAY}", len(days) + 1))
        return cls(hour, tuple(names), tuple(owner), len(segments), tuple(days), tuple(day))

    @property
    def wire(self) -> dict[str, Any]:
        """read.lua's ``by_bucket``."""
        return {"names": self.names, "day": self.day, "days": self.days}


@dataclass(frozen=True)
class Bucket:
    """One bucket's counts: the fields it has (indices into ``BUCKETS``) and their values.
    ``version`` is apply.lua's ('' for a bucket that is not there; None when the shard
    had no versions, so it is read again next time)."""

    version: str | None
    at: NDArray[np.intp]
    values: Vector


def read_buckets(replies: Sequence[Sequence[Any]]) -> dict[int, Bucket]:
    """read.lua's ``buckets`` reply ([i, version, sums], i from 1; sums flat, or a table;
    version false: the shard has none) by i - 1, all of a shard's decoded together: the
    fields outside the vocabulary and the zeros left out."""
    names: list[str] = []
    values: list[Any] = []
    bounds = [0]
    for _, _, raw in replies:
        if isinstance(raw, Mapping):
            names += raw.keys()
            values += raw.values()
        else:
            names += raw[0::2]
            values += raw[1::2]
        bounds.append(len(names))
    spill = BUCKETS.spill
    at = np.fromiter(map(BUCKETS.index.get, names, repeat(spill)), np.intp, len(names))
    try:
        counts = np.array(values, dtype=np.int64)
    except (TypeError, ValueError):  # numbers and digit strings mixed
        counts = np.array([int(v) for v in values], dtype=np.int64)
    keep = (at != spill) & (counts != 0)
    at, counts = at[keep], counts[keep]
    cut = np.concatenate(([0], np.cumsum(keep))).tolist()
    return {
        int(i) - 1: Bucket(
            None if v is False else str(v),
            at[cut[bounds[k]] : cut[bounds[k + 1]]],
            counts[cut[bounds[k]] : cut[bounds[k + 1]]],
        )
        for k, (i, v, _) in enumerate(replies)
    }


@dataclass(frozen=True)
class Buckets:
    """A shard's buckets held for one plan, the versions held of their days, and the
    plan's segments' sums (one row each)."""

    plan: Plan
    held: dict[str, Bucket]
    days: dict[str, str]
    sums: NDArray[np.int64]
    tokens: list[str]  # read.lua's ``tokens`` for ``plan``

    def request(self, plan: Plan) -> dict[str, Any]:
        """read.lua's ``tokens`` and ``held_days`` for ``plan``: the versions held."""
        held, days = self.held, self.days
        tokens = self.tokens if plan == self.plan else [_token(held.get(n)) for n in plan.names]
        return {"tokens": tokens, "held_days": [days.get(d, UNKNOWN) for d in plan.days]}

    def windows(self, nesting: Iterable[tuple[str, int]]) -> dict[str, Vector]:
        """Each window (``window_plan``'s [name, n]: the first n segments) as a vector."""
        running = np.cumsum(self.sums, axis=0)
        return {str(name): running[int(n) - 1] for name, n in nesting}


def _token(bucket: Bucket | None) -> str:
    return UNKNOWN if bucket is None or bucket.version is None else bucket.version


def update(
    plan: Plan,
    old: Buckets | None,
    replies: Sequence[Sequence[Any]],
    days: Mapping[str, str],
) -> Buckets:
    """The buckets of ``plan`` after read.lua's ``buckets`` reply ([i, version, sums] for
    the i-th bucket, from 1; version false: the shard has none) and ``days`` reply,
    asked with ``old.request(plan)`` (or nothing held): every other bucket is the one
    held. Buckets and days outside the plan are dropped."""
    fresh = read_buckets(replies)
    kept = {**(old.days if old is not None else {}), **days}
    held_days = {d: kept[d] for d in plan.days if d in kept}
    if old is not None and old.plan == plan:  # same windows: segments move by the change
        sums = old.sums.copy()
        held = dict(old.held)
        tokens = list(old.tokens)
        for i, new in fresh.items():
            tokens[i] = _token(new)
            name = plan.names[i]
            row = sums[plan.segment[i]]
            gone = held.get(name)
            if gone is not None:
                row[gone.at] -= gone.values
            row[new.at] += new.values
            held[name] = new
        return Buckets(plan, held, held_days, sums, tokens)
    before = old.held if old is not None else {}
    held = {}
    at: list[NDArray[np.intp]] = []
    counts: list[Vector] = []
    for i, (name, s) in enumerate(zip(plan.names, plan.segment, strict=True)):
        bucket = fresh.get(i) or before.get(name)
        if bucket is None:
            raise ValueError(f"read.lua kept back bucket {name}, which is not held")
        held[name] = bucket
        at.append(bucket.at + s * WIDTH)
        counts.append(bucket.values)
    sums = np.zeros(plan.segments * WIDTH, dtype=np.int64)
    if at:
        np.add.at(sums, np.concatenate(at), np.concatenate(counts))
    tokens = [_token(held[name]) for name in plan.names]
    return Buckets(plan, held, held_days, sums.reshape(plan.segments, WIDTH), tokens)


@dataclass(frozen=True)
class Windows:
    """A shard's windows as vectors, the buckets they add up, and a number that is new
    whenever they are (the reader compares a source's shards' numbers)."""

    buckets: Buckets
    vectors: dict[str, Vector]
    version: int


def read_windows(
    plan: Plan, old: Windows | None, reply: Mapping[str, Any], nesting: Iterable[tuple[str, int]]
) -> Windows:
    """The windows after read.lua's reply to ``old.buckets.request(plan)`` (or to a
    request holding nothing): ``old`` itself when nothing moved."""
    replies, days = reply.get("buckets") or (), reply.get("days") or {}
    if old is not None and old.buckets.plan == plan and not (replies or days):
        return old
    kept = update(plan, old.buckets if old is not None else None, replies, days)
    return Windows(kept, kept.windows(nesting), next(_versions))


def add_up(
    shards: Sequence[Windows], names: Iterable[str], hour: int
) -> tuple[dict[str, Counter[str]], dict[int, Counter[str]]]:
    """A source's windows ``names`` summed across its shards, and the hour ``hour`` (the
    window end's, at which every shard's windows were added up) and the one before."""
    windows = {name: BUCKETS.counter([w.vectors[name] for w in shards]) for name in names}
    this = np.sum([w.vectors[THIS_HOUR] for w in shards], axis=0)
    two = np.sum([w.vectors[TWO_HOURS] for w in shards], axis=0)
    return windows, {hour: BUCKETS.counter([this]), hour - HOUR: BUCKETS.counter([two - this])}
