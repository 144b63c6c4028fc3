"""The exporter benchmark's Redis state: 20 sources built from one generated stream.

The stream is applied once through the worker's own apply script (``tests/sync_store.py``:
the same script, arguments and prune calls as the worker) as replay ``r01``, and again as
``live`` shifted to end two minutes ago (live windows end at the wall clock, so they hold
figures); ``r02``..``r19`` are key-for-key copies of ``r01`` (Redis COPY), which is the
state replaying the same file under those names leaves. A quick load keeps every
``keep_every``-th incident only (all its events), so the 28 days stay covered.
"""

from __future__ import annotations

import json
import sys
import time
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # tests.oracle, tests.sync_store

from agents.batch import Consumed, plan_batch  # noqa: E402
from agents.classify import load_mapping  # noqa: E402
from demandmon.settings import Settings  # noqa: E402
from demandmon.state import keys  # noqa: E402
from demandmon.state.record import META_LAST_WRITE  # noqa: E402
from demandmon.state.registry import register  # noqa: E402
from demandmon.state.store import StoreConfig  # noqa: E402
from schemas.vocabulary import LIVE_SOURCE, SOURCE_HEADER  # noqa: E402
from streams.generate import generate_stream  # noqa: E402
from tests.sync_store import SyncStateStore  # noqa: E402

Event = dict[str, Any]
BATCH = 2000  # the worker's DEMANDMON_BATCH_MAX
MAX_BYTES = 65536
MAX_FUTURE_MS = 300_000
REPLAYS = [f"r{n:02d}" for n in range(1, 20)]
SOURCES = [LIVE_SOURCE, *REPLAYS]
LIVE_END_AGO_MS = 120_000
ANCHOR = "bench:live-anchor"  # under the prefix: when the live copy was made (ms)


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def messages(
    events: list[Event], source: str, partitions: int, start: dict[int, int] | None = None
) -> list[Consumed]:
    """The events as the worker consumes them: keyed by incident id, one offset sequence per
    partition (from ``start``), the source in the header (none for live)."""
    offsets = [(start or {}).get(p, 0) for p in range(partitions)]
    headers = [(SOURCE_HEADER, source.encode())] if source != LIVE_SOURCE else []
    out = []
    for e in events:
        key = str(e["incident_id"]).encode()
        p = zlib.crc32(key) % partitions
        value = json.dumps(e).encode()
        out.append(
            Consumed(
                topic="t", partition=p, offset=offsets[p], key=key, value=value, headers=headers
            )
        )
        offsets[p] += 1
    return out


def apply_messages(store: SyncStateStore, msgs: list[Consumed]) -> None:
    """Through plan_batch and the apply script in the worker's batches; replays registered."""
    mapping = load_mapping()
    for lo in range(0, len(msgs), BATCH):
        now_ms = int(time.time() * 1000)
        plan = plan_batch(msgs[lo : lo + BATCH], mapping, MAX_BYTES, now_ms, MAX_FUTURE_MS, REPLAYS)
        store.apply(plan, now_ms=int(time.time() * 1000))


def event_ms(event: Event) -> int:
    text = str(event["occurred_at"]).replace("Z", "+00:00")
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def shifted(events: list[Event], shift_ms: int) -> list[Event]:
    def move(event: Event) -> str:
        when = datetime.fromtimestamp((event_ms(event) + shift_ms) / 1000, tz=UTC)
        return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    return [{**e, "occurred_at": move(e)} for e in events]


def live_stream(events: list[Event], anchor_ms: int) -> list[Event]:
    """The stream moved to end LIVE_END_AGO_MS before ``anchor_ms``."""
    last = max(event_ms(e) for e in events)
    return shifted(events, anchor_ms - LIVE_END_AGO_MS - last)


def fresh_live(events: list[Event], count: int, tag: str) -> list[Event]:
    """``count`` further live events: the stream's earliest, under new ids (``tag``),
    moved to end ten seconds ago, to be applied while the exporter is scraped."""
    head = sorted(events, key=event_ms)[:count]
    moved = shifted(head, int(time.time() * 1000) - 10_000 - event_ms(head[-1]))
    return [
        {**e, "incident_id": tag + str(e["incident_id"]), "event_id": tag + str(e["event_id"])}
        for e in moved
    ]


def thinned(events: list[Event], keep_every: int) -> list[Event]:
    """Every event of every ``keep_every``-th incident, in order of first appearance (not
    by a hash of the id, which would pick partitions: they are chosen by its crc32)."""
    if keep_every <= 1:
        return events
    order: dict[object, int] = {}
    return [e for e in events if order.setdefault(e["incident_id"], len(order)) % keep_every == 0]


def drop_prefix(client: redis.Redis, prefix: str) -> int:
    names = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    for lo in range(0, len(names), 500):
        client.unlink(*names[lo : lo + 500])
    return len(names)


def copy_source(client: redis.Redis, prefix: str, src: str, targets: list[str]) -> int:
    """Every key of ``src``'s shards under each of ``targets``' (COPY, inside Redis), and
    their entries in the shared keys: the state replays of the same stream under those
    names leave. One SCAN for all targets. Returns the keys copied."""
    old = f"{prefix}:{{{src}:"
    pattern = old.replace("{", "\\{").replace("}", "\\}") + "*"
    names = [n.decode() for n in client.scan_iter(match=pattern, count=1000)]
    parts = client.smembers(keys.partitions(prefix, src))
    mark = client.zscore(keys.watermarks(prefix), src)
    for dst in targets:
        new = f"{prefix}:{{{dst}:"
        for lo in range(0, len(names), 1000):
            pipe = client.pipeline(transaction=False)
            for name in names[lo : lo + 1000]:
                pipe.copy(name, new + name.removeprefix(old), replace=True)
            pipe.execute()
        client.sadd(keys.partitions(prefix, dst), *parts)
        client.sadd(keys.sources(prefix), dst)
        if mark is not None:
            client.zadd(keys.watermarks(prefix), {dst: mark})
    return len(names) * len(targets)


@dataclass
class Loaded:
    events: list[Event]  # as applied to every replay
    live_events: list[Event]  # as applied to live
    live_next: list[Event]  # further live events, applied between scrapes
    built_s: float  # seconds spent building the state (0: reused)


def load(
    client: redis.Redis,
    prefix: str,
    profile: str,
    seed: int,
    partitions: int,
    live_count: int,
    *,
    keep_every: int = 1,
    reload: bool = True,
) -> Loaded:
    """The 20 sources under ``prefix`` (reused when already there and not ``reload``)."""
    started = time.monotonic()
    log(f"generating {profile} seed {seed}" + (f", 1 in {keep_every} incidents" * (keep_every > 1)))
    events = thinned(generate_stream(profile, seed=seed)[0], keep_every)
    anchor_key = f"{prefix}:{ANCHOR}"
    anchor = client.get(anchor_key)
    have = len(client.smembers(keys.registry(prefix)))
    built = 0.0
    if reload or have < len(REPLAYS) or anchor is None:
        drop_prefix(client, prefix)
        anchor = str(int(time.time() * 1000)).encode()
        client.set(anchor_key, anchor)
        for name in REPLAYS:
            if register(client, prefix, name, len(SOURCES)).refused:
                raise RuntimeError(f"could not register {name} under {prefix}")
        store = SyncStateStore(client, StoreConfig(prefix, Settings().retention_s))
        t = time.monotonic()
        apply_messages(store, messages(events, REPLAYS[0], partitions))
        log(f"applied {len(events):,} events as {REPLAYS[0]} in {time.monotonic() - t:.1f} s")
        live = live_stream(events, int(anchor))
        apply_messages(store, messages(live, LIVE_SOURCE, partitions))
        log(f"applied them as {LIVE_SOURCE}, ending {LIVE_END_AGO_MS // 1000} s ago")
        t = time.monotonic()
        copied = copy_source(client, prefix, REPLAYS[0], REPLAYS[1:])
        log(
            f"copied {REPLAYS[0]} to {REPLAYS[1]}..{REPLAYS[-1]}: {copied:,} keys in "
            f"{time.monotonic() - t:.1f} s"
        )
        built = time.monotonic() - started
    fresh = fresh_live(events, live_count, f"N{int(time.time())}-")
    return Loaded(events, live_stream(events, int(anchor)), fresh, built)


def live_offsets(client: redis.Redis, prefix: str) -> dict[int, int]:
    """The next offset of each live shard (after what it has applied)."""
    out: dict[int, int] = {}
    for p in client.smembers(keys.partitions(prefix, LIVE_SOURCE)):
        raw = client.hget(keys.shard(prefix, LIVE_SOURCE, int(p)) + keys.META, "off")
        out[int(p)] = int(raw or -1) + 1
    return out


def mark_written(client: redis.Redis, prefix: str, sources: list[str]) -> None:
    """Every shard of ``sources`` looks written as a batch of events in its latest hour
    would leave it: its last-write time moves (as with any write), and so do the versions
    apply.lua keeps of its newest two hour buckets and its newest day bucket (``bv``),
    and of their days (``bd``), so the exporter must read those buckets again (and the
    shard's totals, gauges, oldest open incidents and past-target counts); the figures
    stay."""
    shards = [
        keys.shard(prefix, source, int(p))
        for source in sources
        for p in client.smembers(keys.partitions(prefix, source))
    ]
    pipe = client.pipeline(transaction=False)
    for base in shards:
        pipe.zrevrange(base + "hours", 0, 1)
        pipe.zrevrange(base + "days", 0, 0)
    newest = pipe.execute()
    token = f"bench{time.time_ns()}"  # a version no bucket had before
    pipe = client.pipeline(transaction=False)
    for i, base in enumerate(shards):
        pipe.hincrby(base + keys.META, META_LAST_WRITE, 1)
        hours, days = [int(h) for h in newest[2 * i]], [int(d) for d in newest[2 * i + 1]]
        names = [f"h:{h}" for h in hours] + [f"d:{d}" for d in days]
        if names:
            day_names = {f"d:{start - start % 86400}" for start in hours + days}
            pipe.hincrby(base + keys.BUCKET_VERSIONS, "#", 1)
            pipe.hset(base + keys.BUCKET_VERSIONS, mapping=dict.fromkeys(names, token))
            pipe.hset(base + keys.DAY_VERSIONS, mapping=dict.fromkeys(day_names, token))
    pipe.execute()
