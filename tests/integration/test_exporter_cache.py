"""The exporter's cached reader against the real apply script: after every batch, every
prune-only call (the horizon moving, and pruning going on under the same horizon), the
clock crossing hours and a source deleted and replayed again, what it serves equals a
fresh read, while it reads again only shards whose probe moved (ShardProbe's promise)."""

from __future__ import annotations

import json
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis

from agents.batch import Consumed, plan_batch
from agents.classify import load_mapping
from demandmon.exporter.cache import CachedStateReader
from demandmon.exporter.families import source_samples
from demandmon.exporter.replies import each_reply
from demandmon.exporter.vectors import BUCKET_FIELDS
from demandmon.state import keys
from demandmon.state.reader import SourceFigures, StateReader
from demandmon.state.registry import delete_state, deregister, register
from demandmon.state.store import StoreConfig, script_args
from demandmon.state.windows import DAY, HOUR, hour_bucket
from schemas.vocabulary import LIVE_SOURCE, SOURCE_HEADER
from streams.generate import generate_stream
from tests.conftest import Stack
from tests.helpers import SampleKey, figures_diff
from tests.oracle import epoch
from tests.sync_store import SyncStateStore

pytestmark = pytest.mark.integration

MAPPING = load_mapping()
REPLAY = "rep"
PARTITIONS = 4
RETENTION_S = 6 * 3600  # short, so that retention prunes while the stream is applied
PLAN_NOW_MS = 4_000_000_000_000  # the wall clock plan_batch checks against: after it all


def _messages(events: list[dict[str, Any]], source: str) -> list[Consumed]:
    headers = [] if source == LIVE_SOURCE else [(SOURCE_HEADER, source.encode())]
    offsets = [0] * PARTITIONS
    out = []
    for e in events:
        key = str(e["incident_id"]).encode()
        p = zlib.crc32(key) % PARTITIONS
        out.append(Consumed("t", p, offsets[p], key, json.dumps(e).encode(), headers))
        offsets[p] += 1
    return out


def _samples(figures: list[SourceFigures]) -> dict[SampleKey, float]:
    return {(s.name, s.labels): s.value for f in figures for s in source_samples(f)}


class Check:
    def __init__(self, client: Any, prefix: str) -> None:
        self.cached = CachedStateReader(client, prefix)
        self.plain = StateReader(client, prefix)
        self.client, self.prefix = client, prefix

    def __call__(self, now_s: float) -> int:
        """Cached figures equal fresh ones at ``now_s``; returns how many shards the
        cached reader read (in part or whole) for it."""
        before = self.cached.shard_reads
        sources = self.cached.exported_sources()
        figures = self.cached.read_sources(sources, now_s)
        got = _samples(figures)
        want = _samples(self.plain.read_sources(sources, now_s))
        assert got == want, figures_diff(got, want)
        for fig in figures:  # what expected demand takes from the reader
            hour = hour_bucket(fig.window_end_s)
            hours = {h: self.hour(fig.source, h) for h in (hour, hour - HOUR)}
            assert self.cached.hour_counts(fig.source) == (hours if fig.windows else {})
        return self.cached.shard_reads - before

    def hour(self, source: str, start: int) -> Counter[str]:
        """The hour bucket summed across the source's shards, the exported fields."""
        out: Counter[str] = Counter()
        for p in self.plain.partitions(source):
            bucket = self.client.hgetall(f"{keys.shard(self.prefix, source, p)}h:{start}")
            out.update({k.decode(): int(v) for k, v in bucket.items()})
        return Counter({f: n for f, n in out.items() if n and f in BUCKET_FIELDS})


def test_cached_figures_equal_fresh_ones_through_writes_prunes_hours_and_deletes(
    stack: Stack,
) -> None:
    client = stack.redis()
    prefix = f"c{uuid.uuid4().hex[:10]}"
    config = StoreConfig(prefix, RETENTION_S)
    store = SyncStateStore(client, config)
    assert not register(client, prefix, REPLAY, 20).refused
    events, _ = generate_stream("sample", seed=21)
    last_s = max(epoch(str(e["occurred_at"])) for e in events)
    clock = last_s + 20 * 60  # live windows end at the wall clock: a fake one
    check = Check(client, prefix)
    try:
        msgs = _messages(events, REPLAY) + _messages(events, LIVE_SOURCE)
        step = len(msgs) // 12 + 1
        for lo in range(0, len(msgs), step):
            plan = plan_batch(msgs[lo : lo + step], MAPPING, 65536, PLAN_NOW_MS, 0, {REPLAY})
            store.apply(plan, now_ms=lo)
            check(clock)
        assert check(clock) == 0  # nothing written, the clock still: nothing read
        # Later in the hour: live's past-target counts alone; the hour turns: live's
        # windows too. The replay's windows end at its watermark: not read.
        assert check(clock + 60) == PARTITIONS
        later = clock + HOUR
        assert check(later) == PARTITIONS
        assert check(later) == 0

        # Prune-only calls, as the worker sends to shards its source has moved on from:
        # the horizon moves, then pruning goes on one incident a call under the same
        # horizon (the meta stays as it was: only the incidents kept tell), until nothing
        # is left to prune. Some of those were open, so the figures moved under it.
        marks = keys.watermarks(prefix)
        watermark = int(client.zscore(marks, REPLAY) or 0) + 3 * HOUR * 1000
        base = keys.shard(prefix, REPLAY, 0)
        moved, reads, kept = 0, list[int](), [client.zcard(base + "age")]
        while len(reads) < 400:
            before = _samples(check.plain.read_sources([REPLAY], later))
            args = script_args(config, [], 0, source_watermark=watermark)
            args[4] = 1  # ARGV[5]: at most one incident pruned in this call
            store.script(keys=[base], args=args)
            reads.append(check(later))
            moved += _samples(check.plain.read_sources([REPLAY], later)) != before
            kept.append(client.zcard(base + "age"))
            if kept[-1] == kept[-2]:
                break
        assert len(reads) > 3 and reads == [1] * (len(reads) - 1) + [0], (reads, kept)
        assert moved > 1, "no pruning under the same horizon changed a figure"

        # Deleted: gone, and its shards forgotten; replayed again: read afresh.
        deregister(client, prefix, REPLAY)
        delete_state(client, prefix, REPLAY)
        check(later)
        assert {s for s, _ in check.cached.shards} == {LIVE_SOURCE}
        assert not register(client, prefix, REPLAY, 20).refused
        plan = plan_batch(_messages(events, REPLAY), MAPPING, 65536, PLAN_NOW_MS, 0, {REPLAY})
        store.apply(plan, now_ms=1)
        assert check(later) == PARTITIONS
        assert check(later) == 0
        assert len(check.cached.shards) == 2 * PARTITIONS
    finally:
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            client.delete(key)


def _keys(client: Any, prefix: str) -> list[bytes]:
    return sorted(client.scan_iter(match=f"{prefix}:*", count=1000))


@contextmanager
def _replay_state(
    stack: Stack, seed: int
) -> Iterator[tuple[Any, str, SyncStateStore, list[dict[str, Any]], float]]:
    """A fresh key prefix with replay REPLAY registered, the sample stream of ``seed``, and
    a clock 20 minutes past its last event; every key under the prefix deleted after."""
    client = stack.redis()
    prefix = f"c{uuid.uuid4().hex[:10]}"
    store = SyncStateStore(client, StoreConfig(prefix, 40 * 86400))
    assert not register(client, prefix, REPLAY, 20).refused
    events, _ = generate_stream("sample", seed=seed)
    clock = max(epoch(str(e["occurred_at"])) for e in events) + 20 * 60
    try:
        yield client, prefix, store, events, clock
    finally:
        for key in _keys(client, prefix):
            client.delete(key)


def _copy(client: Any, prefix: str) -> dict[bytes, bytes]:
    """Every key under the prefix, as DUMP has it: an older copy of the data."""
    return {key: dumped for key in _keys(client, prefix) if (dumped := client.dump(key))}


def _come_back_with(client: Any, prefix: str, older: dict[bytes, bytes]) -> None:
    """Redis restarted with ``older``: every key as it was then, and no other."""
    for key in _keys(client, prefix):
        client.delete(key)
    for key, dumped in older.items():
        client.restore(key, 0, dumped)


def _versions_hold(client: Any, prefix: str, source: str) -> None:
    """apply.lua's promise to the reader, per shard: every bucket there is has a version
    (bv), every bucket with a version is one the shard keeps (hours, days), and the days
    with a version (bd) are those of the buckets with one."""
    for p in StateReader(client, prefix).partitions(source):
        base = keys.shard(prefix, source, p)
        versions = {k.decode() for k in client.hkeys(base + keys.BUCKET_VERSIONS)} - {"#"}
        kept = {f"h:{h.decode()}" for h in client.zrange(base + "hours", 0, -1)}
        kept |= {f"d:{d.decode()}" for d in client.zrange(base + "days", 0, -1)}
        there = {name for name in kept if client.exists(base + name)}
        assert there <= versions <= kept, (source, p, there - versions, versions - kept)
        days = {k.decode() for k in client.hkeys(base + keys.DAY_VERSIONS)}
        starts = {int(name[2:]) for name in versions}
        assert days == {f"d:{start - start % DAY}" for start in starts}, (source, p)


class Spy:
    """The bucket replies the cached reader gets from read.lua, per call of ``check``."""

    def __init__(self, check: Check, monkeypatch: pytest.MonkeyPatch) -> None:
        self.replies: list[list[Any]] = []
        read_each = check.cached.read_each

        def spy(calls: Any, handle: Callable[[int, dict[str, Any]], None]) -> None:
            def seen(i: int, reply: dict[str, Any]) -> None:
                self.replies.append(list(reply.get("buckets") or ()))
                handle(i, reply)

            read_each(calls, seen)

        monkeypatch.setattr(check.cached, "read_each", spy)

    def take(self) -> list[Any]:
        """The bucket replies since the last look, all shards together."""
        out = [b for reply in self.replies for b in reply]
        self.replies.clear()
        return out


def _apply(
    store: SyncStateStore, msgs: list[Consumed], parts: int, check: Check, now: float
) -> None:
    step = len(msgs) // parts + 1
    for lo in range(0, len(msgs), step):
        plan = plan_batch(msgs[lo : lo + step], MAPPING, 65536, PLAN_NOW_MS, 0, {REPLAY})
        store.apply(plan, now_ms=lo + 1)
        check(now)


def test_buckets_are_read_by_version_through_a_rollback(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Written buckets are read again and alone; after Redis comes back with an older
    copy of the data (every key as it was) and is written on, the figures are exact."""
    with _replay_state(stack, seed=22) as (client, prefix, store, events, clock):
        check = Check(client, prefix)
        spy = Spy(check, monkeypatch)
        msgs = _messages(events, REPLAY) + _messages(events, LIVE_SOURCE)
        msgs.sort(key=lambda m: json.loads(m.value or b"{}")["occurred_at"])
        a, b = len(msgs) * 2 // 5, len(msgs) * 7 // 10
        _apply(store, msgs[:a], 6, check, clock)
        cold = len(spy.take())
        # A batch of the next events: only the buckets it wrote are read again.
        _apply(store, msgs[a : a + 40], 1, check, clock)
        written = spy.take()
        assert 0 < len(written) < cold / 10, (len(written), cold)
        assert all(version for _, version, _ in written)
        older = _copy(client, prefix)
        _apply(store, msgs[a + 40 : b], 4, check, clock)
        _versions_hold(client, prefix, REPLAY)
        _come_back_with(client, prefix, older)  # Redis restarts with the older copy
        # Written on before the next scrape: the same offsets again, but other events
        # (every other one), so the same calls stamp the same buckets again.
        again = msgs[a + 40 : b : 2]
        step = len(again) // 4 + 1
        plan = plan_batch(again[:step], MAPPING, 65536, PLAN_NOW_MS, 0, {REPLAY})
        store.apply(plan, now_ms=1)
        check(clock)
        _apply(store, again[step:], 3, check, clock)
        _apply(store, msgs[b:], 3, check, clock)
        _versions_hold(client, prefix, REPLAY)
        _versions_hold(client, prefix, LIVE_SOURCE)
        assert check(clock) == 0


def test_a_rollback_written_on_with_other_events_is_read_exactly(stack: Stack) -> None:
    """One shard: X, then Y1 read; Redis comes back with the copy taken after X and the
    same offsets are written with other events (Y2): the same number of calls stamps the
    same buckets again, yet no version repeats, so what Y1 left is not taken for Y2's."""
    with _replay_state(stack, seed=24) as (client, prefix, store, events, clock):
        ids = list(dict.fromkeys(str(e["incident_id"]) for e in events))
        x, y1, y2 = ([e for e in events if str(e["incident_id"]) in ids[i::3]] for i in range(3))
        header = [(SOURCE_HEADER, REPLAY.encode())]

        def batch(part: list[dict[str, Any]], first: int) -> None:
            msgs = [
                Consumed(
                    "t",
                    0,
                    first + n,
                    str(e["incident_id"]).encode(),
                    json.dumps(e).encode(),
                    header,
                )
                for n, e in enumerate(part)
            ]
            store.apply(plan_batch(msgs, MAPPING, 65536, PLAN_NOW_MS, 0, {REPLAY}), now_ms=first)

        check = Check(client, prefix)
        batch(x, 0)
        check(clock)
        older = _copy(client, prefix)
        batch(y1, len(x))
        check(clock)
        _come_back_with(client, prefix, older)
        batch(y2, len(x))
        assert check(clock) == 1
        _versions_hold(client, prefix, REPLAY)


def test_a_state_without_bucket_versions_is_read_whole_until_written(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """State an older apply script wrote (no bv, no bd): every bucket is read, and exact;
    the first write gives each bucket of the shard a version, so they are reused."""
    with _replay_state(stack, seed=23) as (client, prefix, store, events, clock):
        msgs = _messages(events, REPLAY)
        half = len(msgs) // 2
        plan = plan_batch(msgs[:half], MAPPING, 65536, PLAN_NOW_MS, 0, {REPLAY})
        store.apply(plan, now_ms=1)
        for key in _keys(client, prefix):
            if key.endswith((b"}:bv", b"}:bd")):
                client.delete(key)
        check = Check(client, prefix)
        spy = Spy(check, monkeypatch)
        check(clock)
        unversioned = spy.take()
        assert unversioned and all(version is False for _, version, _ in unversioned)
        # The first write stamps every bucket the shard keeps: one more full read (their
        # own versions not looked up), the next looks up those of the days it wrote.
        _apply(store, msgs[half : half + 30], 1, check, clock)
        _versions_hold(client, prefix, REPLAY)
        assert {version for _, version, _ in spy.take()} <= {"*", ""}
        _apply(store, msgs[half + 30 : half + 60], 1, check, clock)
        spy.take()
        _apply(store, msgs[half + 60 : half + 80], 1, check, clock)
        read = [i for i, version, _ in spy.take() if version]
        assert 0 < len(read) < len(unversioned) / 10
        _apply(store, msgs[half + 80 :], 4, check, clock)


def test_figures_follow_redis_losing_its_data_and_the_workers_applying_again(
    stack: Stack,
) -> None:
    """Redis comes back empty (its disk lost) after the reader has held every bucket: the
    next scrape serves the empty state, not what it held; as the events are applied again
    from the start, every scrape is exact, and the end equals the figures before the loss."""
    with _replay_state(stack, seed=25) as (client, prefix, store, events, clock):
        check = Check(client, prefix)
        msgs = _messages(events, REPLAY) + _messages(events, LIVE_SOURCE)
        msgs.sort(key=lambda m: json.loads(m.value or b"{}")["occurred_at"])
        _apply(store, msgs, 4, check, clock)
        sources = check.cached.exported_sources()
        before = _samples(check.cached.read_sources(sources, clock))
        assert before
        _come_back_with(client, prefix, {})
        check(clock)
        lost = _samples(check.cached.read_sources(sources, clock))
        # The window's end is the clock's, not a figure the state holds.
        survived = {
            k: v for k, v in lost.items() if v and not k[0].endswith("window_end_timestamp_seconds")
        }
        assert not survived, survived
        assert not register(client, prefix, REPLAY, 20).refused
        half = len(msgs) // 2
        _apply(store, msgs[:half], 3, check, clock)
        _apply(store, msgs[half:], 3, check, clock)
        # Everything but when it was applied (the wall clock of each batch).
        after = _samples(check.cached.read_sources(sources, clock))
        after, before = (
            {k: v for k, v in f.items() if "last_processed" not in k[0]} for f in (after, before)
        )
        assert after == before, figures_diff(after, before)
        _versions_hold(client, prefix, REPLAY)
        _versions_hold(client, prefix, LIVE_SOURCE)


def test_replies_are_handed_over_in_order_and_errors_raised_once_all_are_read(
    stack: Stack,
) -> None:
    client = stack.redis()
    if not isinstance(client, redis.Redis):
        pytest.skip("one Redis: a cluster runs the calls one after another")
    script = client.register_script("if ARGV[1] == 'fail' then error('no') end return ARGV[1]")
    seen: list[tuple[int, bytes]] = []
    calls = [(["k"], [str(i)]) for i in range(50)]
    each_reply(client, script, calls, lambda i, reply: seen.append((i, reply)))
    assert seen == [(i, str(i).encode()) for i in range(50)]
    with pytest.raises(redis.ResponseError):
        each_reply(client, script, [*calls[:3], (["k"], ["fail"]), *calls[3:]], print)

    def fails_at_7(i: int, reply: bytes) -> None:
        if i == 7:
            raise ZeroDivisionError(reply)

    with pytest.raises(ZeroDivisionError):
        each_reply(client, script, calls, fails_at_7)
    assert client.ping() and script(keys=["k"], args=["after"]) == b"after"  # in step
