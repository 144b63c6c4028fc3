"""Property tests: random messy streams applied through the real Redis apply script equal
the plain-Python oracle's recount (tests/oracle.py), whatever the order, duplication,
batching or partitioning."""

from __future__ import annotations

import json
import uuid
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.batch import Consumed, plan_batch
from agents.classify import load_mapping
from demandmon.clients import SyncRedis
from demandmon.exporter.families import HELP, source_samples
from demandmon.state.reader import StateReader
from demandmon.state.store import StoreConfig
from schemas import EVENT_TYPES
from schemas.vocabulary import SOURCE_HEADER
from tests.conftest import Stack
from tests.oracle import Oracle
from tests.sync_store import SyncStateStore

pytestmark = pytest.mark.integration

MAPPING = load_mapping()
SOURCE = "prop"
# The wall clock plan_batch checks occurred_at against: after every event used here.
PLAN_NOW_MS = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp() * 1000)
FUTURE_MS = 300_000
# The clocks went back at 2023-10-29T01:00Z; streams straddle it and midnight.
BASE = datetime(2023, 10, 28, 22, 0, tzinfo=UTC)
CODES = ["MENTAL_HEALTH", "WELFARE_CHECK", "COLLAPSE", "VULNERABLE_PERSON", "THEFT", "ASB"]
CALLERS = ["public", "partner_health", "partner_other"]
FOLLOW_UPS = [kind for kind in EVENT_TYPES if kind != "created"]
NOT_COMPARED = {
    "demand_stream_window_end_timestamp_seconds",
    "demand_stream_last_processed_timestamp_seconds",
}


def _when(minutes: int) -> str:
    moment = BASE + timedelta(minutes=minutes)
    return moment.isoformat().replace("+00:00", "Z")


@st.composite
def incident(draw: st.DrawFn, number: int) -> list[dict[str, Any]]:
    iid = f"CAD/{number}"
    # Minutes chosen to hit exact hour boundaries often (multiples of 60).
    minute = st.one_of(st.integers(0, 60 * 30), st.integers(0, 30).map(lambda h: h * 60))
    created_at = draw(minute)
    events: list[dict[str, Any]] = []
    if draw(st.integers(0, 9)) > 0:  # one in ten never gets its created event
        created: dict[str, Any] = {
            "type": "created",
            "occurred_at": _when(created_at),
            "bcu": draw(st.sampled_from(["AW", "SE", "NE"])),
            "opening_code": draw(st.sampled_from(CODES)),
            "caller": draw(st.sampled_from(CALLERS)),
        }
        if draw(st.booleans()):
            created["grade"] = draw(st.sampled_from("ISER"))
        events.append(created)
    for _ in range(draw(st.integers(0, 7))):
        kind = draw(st.sampled_from(FOLLOW_UPS))
        # Ties on occurred_at are common: small offsets, some zero, some before creation.
        at = created_at + draw(st.sampled_from([-5, 0, 0, 10, 15, 16, 60, 61, 90, 240]))
        e: dict[str, Any] = {"type": kind, "occurred_at": _when(at)}
        if kind == "graded":
            e["grade"] = draw(st.sampled_from("ISER"))
        elif kind == "classified":
            e["opening_code"] = draw(st.sampled_from(CODES))
        elif kind.startswith("resource_"):
            e["resource_id"] = draw(st.sampled_from(["R1", "R2"]))
            if kind == "resource_assigned":
                e["officers"] = draw(st.integers(1, 3))
        elif kind == "s136_arrived_pos":
            e["place"] = "HBPOS"
        events.append(e)
    for i, e in enumerate(events):
        e.update(schema="cad.incident-event/1", event_id=f"ev{number}-{i}", incident_id=iid)
    return events


@st.composite
def messy_stream(draw: st.DrawFn) -> list[dict[str, Any]]:
    events = [e for n in range(draw(st.integers(1, 8))) for e in draw(incident(n))]
    # Duplicates, some with different payloads: the first applied wins.
    for e in draw(st.lists(st.sampled_from(events), max_size=5)) if events else []:
        twin = dict(e)
        if draw(st.booleans()):
            twin["occurred_at"] = _when(draw(st.integers(0, 600)))
        events.append(twin)
    return draw(st.permutations(events))


def _messages(events: list[dict[str, Any]], partitions: int) -> list[Consumed]:
    offsets = [0] * partitions
    out = []
    for e in events:
        key = e["incident_id"].encode()
        p = zlib.crc32(key) % partitions
        out.append(
            Consumed(
                "t", p, offsets[p], key, json.dumps(e).encode(), [(SOURCE_HEADER, SOURCE.encode())]
            )
        )
        offsets[p] += 1
    return out


def _pipeline_samples(client: SyncRedis, prefix: str) -> dict[Any, float]:
    fig = StateReader(client, prefix).read(SOURCE, now_s=0)
    out = {}
    for s in source_samples(fig):
        name = s.name + ("_total" if HELP[s.name][1] == "counter" else "")
        if s.value != 0 and name not in NOT_COMPARED:
            out[(name, s.labels)] = round(s.value, 6)
    return out


def _oracle_samples(events: list[dict[str, Any]]) -> dict[Any, float]:
    oracle = Oracle()
    for e in events:
        oracle.feed(e, SOURCE)
    return {k: round(v, 6) for k, v in oracle.samples(SOURCE).items()}


@pytest.fixture(scope="module")
def client(stack: Stack) -> redis.Redis:
    return redis.Redis.from_url(stack.redis_url)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=messy_stream(),
    partitions=st.integers(1, 4),
    batch=st.integers(1, 20),
    replays=st.integers(1, 2),
)
def test_messy_streams_equal_the_oracle(
    client: redis.Redis, events: list[dict[str, Any]], partitions: int, batch: int, replays: int
) -> None:
    prefix = f"p{uuid.uuid4().hex[:10]}"
    store = SyncStateStore(client, StoreConfig(prefix, 35 * 86400))
    messages = _messages(events, partitions)
    # A redelivery of everything (as after a crash before the commit) changes nothing.
    for _ in range(replays):
        for i in range(0, len(messages), batch):
            plan = plan_batch(
                messages[i : i + batch], MAPPING, 65536, PLAN_NOW_MS, FUTURE_MS, {SOURCE}
            )
            store.apply(plan, now_ms=0)
    try:
        assert _pipeline_samples(client, prefix) == _oracle_samples(events)
    finally:
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)


@st.composite
def spread_stream(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A messy stream whose incidents start up to 100 days apart: events are late, and
    incidents leave at the horizon, by the source's watermark across partitions."""
    events = draw(messy_stream())
    shift = {e["incident_id"]: draw(st.integers(0, 100)) for e in events}
    for e in events:
        moment = datetime.fromisoformat(e["occurred_at"].replace("Z", "+00:00"))
        e["occurred_at"] = (moment + timedelta(days=shift[e["incident_id"]])).isoformat()
    return events


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=spread_stream(), partitions=st.integers(2, 4))
def test_lateness_follows_the_sources_watermark_across_partitions(
    client: redis.Redis, events: list[dict[str, Any]], partitions: int
) -> None:
    """Applied one message at a time in file order, so the order across partitions is the
    oracle's: a partition that has seen nothing still refuses what the source left
    behind, and retention prunes by the source's watermark."""
    prefix = f"p{uuid.uuid4().hex[:10]}"
    store = SyncStateStore(client, StoreConfig(prefix, 35 * 86400))
    try:
        for message in _messages(events, partitions):
            store.apply(
                plan_batch([message], MAPPING, 65536, PLAN_NOW_MS, FUTURE_MS, {SOURCE}), now_ms=0
            )
        assert _pipeline_samples(client, prefix) == _oracle_samples(events)
    finally:
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)


def test_too_late_events_are_rejected_and_counted(client: redis.Redis) -> None:
    prefix = f"p{uuid.uuid4().hex[:10]}"
    store = SyncStateStore(client, StoreConfig(prefix, 35 * 86400))

    def ev(i: int, iid: str, kind: str, when: str, **kw: Any) -> dict[str, Any]:
        return {
            "schema": "cad.incident-event/1",
            "event_id": f"e{i}",
            "incident_id": iid,
            "type": kind,
            "occurred_at": when,
            **kw,
        }

    created = {"bcu": "SE", "opening_code": "MENTAL_HEALTH", "caller": "public"}
    events = [
        ev(1, "A", "created", "2023-11-01T00:00:00Z", **created),
        ev(2, "B", "created", "2023-12-10T00:00:00Z", **created),
        ev(3, "C", "created", "2023-11-04T23:59:59Z", **created),  # 35 d + 1 s behind
        ev(4, "D", "created", "2023-11-05T00:00:00Z", **created),  # exactly 35 d: kept
        ev(5, "E", "graded", "2023-11-06T00:00:00Z", grade="I"),  # never created
        ev(6, "B", "resource_assigned", "2023-12-10T00:05:00Z", resource_id="R", officers=1),
        ev(7, "F", "created", "2024-01-20T00:00:00Z", **created),  # moves the horizon on
    ]
    messages = _messages(events, 1)
    result = store.apply(
        plan_batch(messages, MAPPING, 65536, PLAN_NOW_MS, FUTURE_MS, {SOURCE}), now_ms=0
    )
    oracle = Oracle()
    verdicts = [oracle.feed(e, SOURCE) for e in events]
    assert verdicts.count("too_late") == result.rejected["too_late"] == 1
    fig = StateReader(client, prefix).read(SOURCE, now_s=0)
    assert fig.meta["rej:too_late"] == 1
    assert fig.meta["orphaned"] == oracle.orphaned(SOURCE) == 1
    expected = {k: round(v, 6) for k, v in oracle.samples(SOURCE).items()}
    expected[("demand_events_rejected_total", (("reason", "too_late"), ("source", SOURCE)))] = 1
    expected[("demand_incidents_orphaned_total", (("source", SOURCE),))] = 1
    assert _pipeline_samples(client, prefix) == expected
    # The too-late event's offset is owed a dead letter until the worker settles it: a
    # redelivery of the batch (a crash before the dead letter went out) reports it again.
    assert result.late == [2]
    again = store.apply(
        plan_batch(messages, MAPPING, 65536, PLAN_NOW_MS, FUTURE_MS, {SOURCE}), now_ms=0
    )
    assert again.skipped == len(events) and again.late == [2]
    client.hdel(f"{prefix}:{{{SOURCE}:0}}:late", "2")
    settled = store.apply(
        plan_batch(messages, MAPPING, 65536, PLAN_NOW_MS, FUTURE_MS, {SOURCE}), now_ms=0
    )
    assert settled.late == []
    assert _pipeline_samples(client, prefix) == expected


def test_events_far_in_the_future_are_rejected_and_counted(client: redis.Redis) -> None:
    prefix = f"p{uuid.uuid4().hex[:10]}"
    store = SyncStateStore(client, StoreConfig(prefix, 35 * 86400))
    now_ms = int(datetime(2023, 11, 1, 12, 0, tzinfo=UTC).timestamp() * 1000)

    def created(i: int, when: str) -> bytes:
        return json.dumps(
            {
                "schema": "cad.incident-event/1",
                "event_id": f"f{i}",
                "incident_id": f"L{i}",
                "type": "created",
                "occurred_at": when,
                "bcu": "AW",
                "opening_code": "ASB",
                "caller": "public",
            }
        ).encode()

    replay = [(SOURCE_HEADER, b"r")]
    messages = [
        Consumed("t", 0, 0, b"L1", created(1, "2023-11-01T12:05:00Z")),  # exactly 5 min: ok
        Consumed("t", 0, 1, b"L2", created(2, "2023-11-01T12:05:00.001Z")),  # too far
        Consumed("t", 0, 2, b"L3", created(3, "2023-11-01T12:06:00Z"), replay),  # too far
        Consumed("t", 0, 3, b"L4", created(4, "2023-11-01T12:04:00Z"), replay),  # ok
    ]
    plan = plan_batch(messages, MAPPING, 65536, now_ms, 300_000, {"r"})
    assert [(r.source, r.reason) for r in plan.rejections] == [
        ("live", "too_far_future"),
        ("r", "too_far_future"),
    ]
    result = store.apply(plan, now_ms=now_ms)
    assert result.rejected["too_far_future"] == 2  # counted, every source alike
    assert result.applied == 2
