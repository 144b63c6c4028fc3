"""Sources are bounded (issue 9), through the real worker, exporter and Prometheus: a replay
registers its source before it sends; a message naming an unregistered source is
dead-lettered as ``bad_source`` and changes no figure; the cap refuses one replay source
too many in one line while ``live`` is never refused; ``sources list`` shows them;
``sources delete`` removes every key of a source, its series vanish from /metrics and from
Prometheus, the worker does not take the vanished shards for Redis going back, and later
messages of the deleted source are refused."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from demandmon.clients import SyncRedis
from demandmon.sources import iso
from demandmon.state import keys
from demandmon.state.registry import delete_state, deregister, register, registered
from streams.generate import generate_stream
from tests.conftest import Pipeline, Stack
from tests.helpers import (
    WALL_CLOCK_METRICS,
    SampleKey,
    event_messages,
    metric,
    produce,
    prom_query,
    read_topic,
    register_source,
    scrape,
    send_records,
    source_figures,
    wait_for,
)
from tests.oracle import Oracle

pytestmark = pytest.mark.integration

HEADER = "demandmon-source"
REWINDS = "demand_worker_rewinds_total"
# Samples that follow the wall clock or the exporter's own work, not the state.
NOT_STATE = {*WALL_CLOCK_METRICS, "demand_exporter_scrape_duration_seconds"}


def _write(events: list[dict[str, Any]], path: Path) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def _replay(pipeline: Pipeline, path: Path, source: str) -> None:
    result = pipeline.run("replay", str(path), "--source", source, "--quiet")
    assert f"replay {source}: sent" in result.stdout, result


def _expected(events: list[dict[str, Any]], source: str) -> dict[SampleKey, float]:
    oracle = Oracle()
    for e in events:
        oracle.feed(e, source)
    return {k: round(v, 6) for k, v in oracle.samples(source).items()}


def _state_figures(samples: dict[SampleKey, float]) -> dict[SampleKey, float]:
    return {k: v for k, v in samples.items() if k[0] not in NOT_STATE}


def _worker_url(pipeline: Pipeline) -> str:
    return f"http://127.0.0.1:{pipeline.env['DEMANDMON_WORKER_WEB_PORT']}/metrics"


def _dead_letters(pipeline: Pipeline, placed: list[tuple[int, int]]) -> dict[tuple[int, int], Any]:
    """The dead letters of the messages at ``placed`` (partition, offset), by place."""

    def where(record: Any) -> tuple[int, int]:
        head = dict(record.headers or [])
        return int(head["demandmon-partition"]), int(head["demandmon-offset"])

    records = read_topic(
        pipeline.stack.kafka,
        pipeline.deadletter,
        lambda recs: set(placed) <= {where(r) for r in recs},
        timeout_s=60,
    )
    return {where(r): dict(r.headers) for r in records if where(r) in placed}


def test_unregistered_source_is_refused_and_the_cap_holds(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    prefix, client = pipeline.prefix, pipeline.redis()
    mine, stranger = f"reg-{prefix}", f"stranger-{prefix}"
    events, _ = generate_stream("sample", seed=3)
    expected = _expected(events, mine)

    pipeline.run("topics")
    _replay(pipeline, _write(events, tmp_path / "a.jsonl"), mine)
    assert registered(client, prefix) == {mine}
    pipeline.start_worker()
    pipeline.start_exporter()
    got = wait_for(
        lambda: source_figures(scrape(pipeline.metrics_url), mine),
        lambda g: g == expected,
        90,
        "the replay's figures",
    )
    before = _state_figures(scrape(pipeline.metrics_url))

    # A producer names a source nobody registered: dead-lettered, counted under unknown.
    event = {**events[0], "incident_id": "STRANGER/1", "event_id": "stranger-1"}
    message = (b"STRANGER/1", json.dumps(event).encode(), [(HEADER, stranger.encode())])
    placed = send_records(pipeline.stack.kafka, pipeline.topic, [message])
    letter = _dead_letters(pipeline, placed)[placed[0]]
    assert letter["demandmon-reason"] == b"bad_source"
    assert letter["demandmon-detail"] == b"source is not registered"
    assert letter["demandmon-source"] == b"unknown"
    rejected = ("demand_events_rejected_total", (("reason", "bad_source"), ("source", "unknown")))
    after = wait_for(
        lambda: _state_figures(scrape(pipeline.metrics_url)),
        lambda s: s.get(rejected) == 1,
        30,
        "the rejection to be counted",
    )
    # No figure moved but that counter (the unknown source's series are new, all zero).
    unknown = {k: v for k, v in after.items() if ("source", "unknown") in k[1]}
    assert {k: v for k, v in unknown.items() if v} == {rejected: 1}
    assert {k: v for k, v in after.items() if k not in unknown} == before
    assert source_figures(after, mine) == got
    assert not [k for k in client.scan_iter(match=f"{prefix}:*{stranger}*", count=1000)]
    assert not client.sismember(f"{prefix}:sources", stranger)

    # The cap (20 by default): live and 19 replays; the 20th replay source is refused in
    # one line and sends nothing, a registered one replays again, live always can.
    for n in range(18):
        register_source(pipeline.stack.redis_url, prefix, f"filler-{n}")
    one = _write(events[:1], tmp_path / "one.jsonl")
    refused = pipeline.run("replay", str(one), "--source", "one-too-many", check=False)
    assert refused.returncode == 1, refused
    assert refused.stderr.strip() == (
        "demandmon replay: source cap reached (20 sources: live and 19 replays); "
        "delete one with demandmon sources delete NAME"
    )
    assert "one-too-many" not in registered(client, prefix)
    _replay(pipeline, one, mine)  # already registered: fine at the cap
    live_event = {**events[0], "incident_id": "LIVE/1", "event_id": "live-1"}
    _replay(pipeline, _write([live_event], tmp_path / "live.jsonl"), "live")
    applied_live = ("demand_events_applied_total", (("source", "live"),))
    wait_for(
        lambda: scrape(pipeline.metrics_url).get(applied_live),
        lambda v: v == 1,
        30,
        "the live event to be applied at the cap",
    )
    sent = read_topic(pipeline.stack.kafka, pipeline.topic, lambda r: False, timeout_s=3)
    assert not [r for r in sent if (HEADER, b"one-too-many") in (r.headers or [])]
    assert len(registered(client, prefix)) == 19


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _keys_of(client: SyncRedis, prefix: str, name: str) -> tuple[set[str], set[str], set[str]]:
    """(keys, fields of <prefix>:pos, members of <prefix>:sources / :watermarks / :registry)
    that belong to source ``name``."""
    found = {
        k.decode()
        for k in client.scan_iter(match=f"{prefix}:*", count=1000)
        if f"{{{name}:" in k.decode() or k.decode().endswith(f":{name}")
    }
    fields = {_text(f) for f in client.hkeys(f"{prefix}:pos") if _text(f).endswith(f":{name}")}
    members = {key for key in ("sources", "registry") if client.sismember(f"{prefix}:{key}", name)}
    if client.zscore(f"{prefix}:watermarks", name) is not None:
        members.add("watermarks")
    return found, fields, members


def _all_keys(client: SyncRedis, prefix: str) -> set[str]:
    return {k.decode() for k in client.scan_iter(match=f"{prefix}:*", count=1000)}


def test_sources_list_and_delete(pipeline: Pipeline, tmp_path: Path) -> None:
    prefix, client, prom = pipeline.prefix, pipeline.redis(), pipeline.stack.prometheus
    keep, drop, drop2 = (f"{kind}-{prefix}" for kind in ("keep", "drop", "drop2"))
    events, _ = generate_stream("sample", seed=5)
    live_events, _ = generate_stream("sample", seed=6)
    path = _write(events, tmp_path / "s.jsonl")
    expected = {s: _expected(events, s) for s in (keep, drop, drop2)}
    applied = expected[keep][("demand_events_applied_total", (("source", keep),))]
    # Live windows end at the wall clock: its applied count is what can be predicted.
    applied_live = ("demand_events_applied_total", (("source", "live"),))
    live_applied = _expected(live_events, "live")[applied_live]

    pipeline.run("topics")
    worker = pipeline.start_worker()
    pipeline.start_exporter()
    for source in (keep, drop, drop2):
        _replay(pipeline, path, source)
    produce(pipeline.stack.kafka, pipeline.topic, event_messages(live_events))
    wait_for(
        lambda: scrape(pipeline.metrics_url),
        lambda s: (
            s.get(applied_live) == live_applied
            and all(source_figures(s, src) == want for src, want in expected.items())
        ),
        120,
        "every source's figures",
    )

    listed = json.loads(pipeline.run("sources", "list", "--format", "json").stdout)
    assert listed["count"] == 4 and listed["max"] == 20
    by_name = {s["name"]: s for s in listed["sources"]}
    assert set(by_name) == {"live", keep, drop, drop2}
    oracle = Oracle()
    for e in events:
        oracle.feed(e, keep)
    assert by_name[keep] == {
        "name": keep,
        "kind": "replay",
        "applied": applied,
        "watermark": iso(round((oracle.watermark(keep) or 0) * 1000)),
        "sent": len(events),
    }
    assert by_name["live"]["kind"] == "live" and by_name["live"]["sent"] is None
    table = pipeline.run("sources", "list").stdout.splitlines()
    assert table[0].split() == ["source", "kind", "applied", "watermark", "sent"]
    assert table[1].split()[:2] == ["live", "live"]
    row = next(line.split() for line in table if line.startswith(keep + " "))
    watermark = by_name[keep]["watermark"]
    assert row == [keep, "replay", f"{int(applied):,}", watermark, f"{len(events):,}"]
    assert table[-1] == "4 of 20 sources"

    series = f'demand_events_applied_total{{source="{drop}"}}'
    wait_for(lambda: prom_query(prom, series), bool, 30, "Prometheus to scrape the source")
    before = _all_keys(client, prefix)
    pos_before = {_text(f) for f in client.hkeys(f"{prefix}:pos")}
    owned, fields, members = _keys_of(client, prefix, drop)
    assert any(k.endswith(":meta") for k in owned)
    assert {f"{prefix}:parts:{drop}", f"{prefix}:replay:{drop}"} <= owned
    assert fields and members == {"sources", "registry", "watermarks"}

    # No wait: the keys vanish before the worker reads the registry again, the hard case
    # for its rollback check.
    out = pipeline.run("sources", "delete", drop, "--wait", "0").stdout
    assert f"removed {drop} from {prefix}:registry" in out
    assert f"removed {prefix}:parts:{drop}, {prefix}:replay:{drop}" in out
    assert _all_keys(client, prefix) == before - owned
    assert {_text(f) for f in client.hkeys(f"{prefix}:pos")} == pos_before - fields
    assert _keys_of(client, prefix, drop) == (set(), set(), set())
    samples = scrape(pipeline.metrics_url)
    assert not [k for k in samples if ("source", drop) in k[1]]
    assert source_figures(samples, keep) == expected[keep]
    wait_for(lambda: prom_query(prom, series), lambda r: r == [], 20, "the series to go stale")
    assert prom_query(prom, f'demand_events_applied_total{{source="{keep}"}}')

    # The worker reads the registry (its check, every 5 s) and forgets the shards: no
    # rewind, then or at the next check.
    worker_url = _worker_url(pipeline)
    wait_for(
        lambda: metric(worker_url, "demand_worker_registered_sources"),
        lambda v: v == 2,
        20,
        "the worker to read the registry",
    )
    time.sleep(6)
    assert metric(worker_url, REWINDS) == 0

    # Later messages of the deleted source are refused; nothing of it comes back.
    later = [
        ({**e, "event_id": f"later-{i}"}, [(HEADER, drop.encode())])
        for i, e in enumerate(events[:3])
    ]
    placed = send_records(
        pipeline.stack.kafka,
        pipeline.topic,
        [(str(e["incident_id"]).encode(), json.dumps(e).encode(), h) for e, h in later],
    )
    letters = _dead_letters(pipeline, placed)
    assert [letters[p]["demandmon-reason"] for p in placed] == [b"bad_source"] * 3
    rejected = ("demand_events_rejected_total", (("reason", "bad_source"), ("source", "unknown")))
    wait_for(lambda: scrape(pipeline.metrics_url).get(rejected), lambda v: v == 3, 30, "counts")
    time.sleep(6)  # a check more, after the batch
    assert _keys_of(client, prefix, drop) == (set(), set(), set())
    assert metric(worker_url, REWINDS) == 0
    assert worker.poll() is None

    # With the default wait (workers read the registry meanwhile), and the refusals.
    owned2, _, _ = _keys_of(client, prefix, drop2)
    started = time.monotonic()
    out = pipeline.run("sources", "delete", drop2).stdout
    assert time.monotonic() - started >= 7 and "waiting 7 s" in out
    assert owned2 and _keys_of(client, prefix, drop2) == (set(), set(), set())
    figures = scrape(pipeline.metrics_url)
    assert source_figures(figures, keep) == expected[keep]
    assert figures.get(applied_live) == live_applied
    gone = pipeline.run("sources", "delete", drop, check=False)
    assert gone.returncode == 1 and gone.stderr.startswith("demandmon sources: unknown source")
    live = pipeline.run("sources", "delete", "live", check=False)
    assert live.returncode == 2 and len(live.stderr.strip().splitlines()) == 1
    assert pipeline.run("sources", "list").stdout.splitlines()[-1] == "2 of 20 sources"
    assert metric(worker_url, REWINDS) == 0


def test_deleting_a_source_removes_where_its_partitions_stood(stack: Stack) -> None:
    """The frontiers workers publish to keep together (agents/peers.py) go with the
    source: a source replayed again under the name starts from nothing stale."""
    client, prefix = stack.redis(), f"f{uuid.uuid4().hex[:10]}"
    frontiers = keys.frontiers(prefix)
    try:
        for name in ("a", "ab"):
            assert not register(client, prefix, name, 20).refused
        client.hset(frontiers, mapping={"0:a": 1, "3:a": 2, "0:ab": 3, "1:b:a": 4})
        deregister(client, prefix, "a")
        delete_state(client, prefix, "a")
        assert {_text(f) for f in client.hkeys(frontiers)} == {"0:ab", "1:b:a"}
    finally:
        client.delete(frontiers, keys.registry(prefix), keys.sources(prefix))
