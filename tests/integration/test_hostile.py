"""Hostile input through the real worker (issue 8): every kind of bad message lands on the
dead-letter topic with its reason, the worker never stops, the figures equal the oracle's
recount of the valid events alone, and personal data (a canary) goes nowhere.

Reasons follow the contract: a message that breaks a rule about the message itself (not
UTF-8 JSON, too deep, a number no field can take, NaN, a repeated name) is
``malformed_json``; parsed JSON that breaks a field or key rule is ``schema_violation``;
then ``oversized``, ``bad_source`` and ``too_far_future`` (every source, replays included).
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from demandmon.clients import SyncRedis
from streams.generate import generate_stream
from tests.conftest import Pipeline
from tests.helpers import (
    WALL_CLOCK_METRICS,
    SampleKey,
    figures_diff,
    key_for_partition,
    read_topic,
    register_source,
    scrape,
    send_records,
    source_figures,
)
from tests.oracle import Oracle
from tests.redis_copy import aof_dir, rewrite_aof

pytestmark = pytest.mark.integration

SOURCE = "hostile-replay"
HEADER = "demandmon-source"
ON_SOURCE = [(HEADER, SOURCE.encode())]
LIVE: list[tuple[str, bytes]] = []
CONTRACT_FIELDS = frozenset(
    {
        "schema",
        "event_id",
        "incident_id",
        "type",
        "occurred_at",
        "bcu",
        "opening_code",
        "caller",
        "grade",
        "resource_id",
        "officers",
        "place",
        "closing_code",
    }
)  # summary is a contract field too, but never copied to a dead letter
# Samples that the oracle does not recount (wall clock) or that are checked on their own.
NOT_RECOUNTED = {*WALL_CLOCK_METRICS, "demand_events_rejected_total"}


def created(incident: str, event_id: str, at: str, **extra: Any) -> dict[str, Any]:
    return {
        "schema": "cad.incident-event/1",
        "event_id": event_id,
        "incident_id": incident,
        "type": "created",
        "occurred_at": at,
        "bcu": "SE",
        "opening_code": "MENTAL_HEALTH",
        "caller": "public",
        **extra,
    }


def dumps(doc: object) -> bytes:
    return json.dumps(doc).encode()


@dataclass
class Kind:
    """One hostile message: what is sent, and what must come of it."""

    name: str
    value: bytes | None
    key: bytes | None
    headers: list[tuple[str, bytes]]
    reason: str
    source: str  # the source its dead letter and rejection count are filed under
    placed: tuple[int, int] = (-1, -1)  # (partition, offset) once sent
    problems: list[str] = field(default_factory=list)


def _hostile(stream_time: str) -> tuple[list[Kind], list[Kind]]:
    """Two groups of hostile messages: rules about the message, then about keys, sources
    and time. Each one that carries an event is a ``created`` of its own incident
    ``HX-<kind>``, so one applied by mistake shows up as an extra incident."""

    def event(kind: str, **extra: Any) -> dict[str, Any]:
        return created(f"HX-{kind}", f"hx-{kind}", stream_time, **extra)

    def k(kind: str) -> bytes:
        return f"HX-{kind}".encode()

    valid_text = dumps(event("utf16"))
    dup_top = dumps(event("dup_top"))[:-1] + b', "bcu": "AW"}'
    dup_nested = dumps(event("dup_nested"))[:-1] + b', "extra": {"x": 1, "x": 2}}'
    huge = dumps(event("huge_int"))[:-1] + b', "extra": ' + b"7" * 5000 + b"}"
    inf = dumps(event("inf"))[:-1] + b', "extra": 1e400}'
    nan = dumps(event("nan"))[:-1] + b', "extra": NaN}'
    # 10,000 levels, closed: valid JSON under the size limit, only far too deep.
    deep = dumps(event("deep_object"))[:-1] + b', "extra": ' + b'{"a":' * 10000 + b"1"
    deep += b"}" * 10000 + b"}"
    now = datetime.now(UTC)
    soon = (now + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    message_rules = [
        Kind("deep_array_60000_brackets", b"[" * 60000, k("a1"), ON_SOURCE, "malformed_json",
             SOURCE),
        # 20,000 x 5 bytes is over 64 KiB: the size limit refuses it before any parsing.
        Kind("deep_object_20000_levels", b'{"a":' * 20000, k("a2"), LIVE, "oversized", "live"),
        Kind("deep_object_10000_levels_closed", deep, k("deep_object"), LIVE, "malformed_json",
             "live"),
        Kind("integer_of_5000_digits", huge, k("huge_int"), ON_SOURCE, "malformed_json", SOURCE),
        Kind("number_1e400", inf, k("inf"), ON_SOURCE, "malformed_json", SOURCE),
        Kind("NaN", nan, k("nan"), LIVE, "malformed_json", "live"),
        Kind("invalid_utf8", dumps(event("utf8"))[:-1] + b', "summary": "caf\xe9 \xff"}',
             k("utf8"), LIVE, "malformed_json", "live"),
        Kind("utf16_encoded_event", valid_text.decode().encode("utf-16"), k("utf16"),
             ON_SOURCE, "malformed_json", SOURCE),
        Kind("repeated_name_top_level", dup_top, k("dup_top"), ON_SOURCE, "malformed_json",
             SOURCE),
        Kind("repeated_name_in_nested_unknown_object", dup_nested, k("dup_nested"), LIVE,
             "malformed_json", "live"),
        Kind("top_level_json_array", b"[" + dumps(event("array")) + b"]", k("array"), LIVE,
             "schema_violation", "live"),
        Kind("empty_value", b"", k("empty"), ON_SOURCE, "malformed_json", SOURCE),
        Kind("null_value_tombstone", None, k("null"), LIVE, "malformed_json", "live"),
        Kind("oversized_65_KiB_summary", dumps(event("big", summary="x" * 70_000)), k("big"),
             ON_SOURCE, "oversized", SOURCE),
    ]  # fmt: skip
    keys_sources_time = [
        Kind("valid_event_without_kafka_key", dumps(event("nokey")), None, ON_SOURCE,
             "schema_violation", SOURCE),
        Kind("kafka_key_is_not_incident_id", dumps(event("otherkey")), b"HX-someone-else",
             ON_SOURCE, "schema_violation", SOURCE),
        Kind("occurred_at_two_days_ahead_on_replay",
             dumps(created("HX-soon", "hx-soon", soon)), b"HX-soon", ON_SOURCE,
             "too_far_future", SOURCE),
        Kind("year_9999_on_replay", dumps(created("HX-9999", "hx-9999", "9999-12-31T23:59:59Z")),
             b"HX-9999", ON_SOURCE, "too_far_future", SOURCE),
        Kind("non_ascii_source_header_malformed_payload", b'{"schema": "cad.incident-ev',
             k("nonascii"), [(HEADER, "r\u00e9play-\u00fc".encode())], "bad_source", "unknown"),
        Kind("invalid_source_name_header", dumps(event("badname")), k("badname"),
             [(HEADER, b"No Such/Source!")], "bad_source", "unknown"),
    ]  # fmt: skip
    return message_rules, keys_sources_time


def _after_events(partitions: int, at: str) -> list[dict[str, Any]]:
    """One valid ``created`` per partition, so every partition (the one holding the year
    9999 event included) has a normal event to apply after the hostile ones."""
    out = []
    for p in range(partitions):
        incident = key_for_partition("AFTER/", p, partitions)
        out.append(created(incident, f"after-{p}", at))
    return out


def _records(
    events: list[dict[str, Any]], headers: list[tuple[str, bytes]]
) -> list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]]:
    return [(str(e["incident_id"]).encode(), dumps(e), headers) for e in events]


def _ids_in_redis(client: SyncRedis, prefix: str, pattern: str) -> set[str]:
    """Hash fields and sorted-set members matching ``pattern`` under ``prefix`` (where the
    state keeps incident ids), to name hostile messages that were applied."""
    found: set[str] = set()
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        kind = client.type(key)
        if kind == b"hash":
            found.update(f.decode() for f, _ in client.hscan_iter(key, match=pattern))
        elif kind == b"zset":
            found.update(m.decode() for m, _ in client.zscan_iter(key, match=pattern))
    return found


def _wait_quiet(
    probe: Callable[[], Any], done: Callable[[Any], bool], timeout_s: float, stall_s: float
) -> Any:
    """Poll until ``done``, the timeout, or ``stall_s`` without change; return the last."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    moved = time.monotonic()
    while time.monotonic() < deadline:
        try:
            now = probe()
        except Exception:
            now = last
        if now is not None and done(now):
            return now
        if now != last:
            last, moved = now, time.monotonic()
        elif time.monotonic() - moved > stall_s:
            break
        time.sleep(0.3)
    return last


def _headers(record: Any) -> dict[str, bytes]:
    return {k: v for k, v in (record.headers or [])}


def _check_value(kind: str, record: Any) -> list[str]:
    """A dead letter's value holds only the contract's own fields, never summary or an
    unknown field."""
    raw = record.value
    if not raw:
        return []
    try:
        doc = json.loads(raw)
    except ValueError:
        return [f"{kind}: dead-letter value is not JSON ({raw[:60]!r}...)"]
    if not isinstance(doc, dict):
        return [f"{kind}: dead-letter value is not a JSON object"]
    extra = sorted(set(doc) - CONTRACT_FIELDS)
    return [f"{kind}: dead-letter value holds {extra}"] if extra else []


def test_hostile_messages_are_dead_lettered_and_never_stop_the_worker(
    pipeline: Pipeline,
) -> None:
    """20 kinds of hostile message, interleaved with a small valid replay stream, then one
    valid event per partition: each hostile one is dead-lettered (matched by partition and
    offset) with its reason, source and topic, and a value holding contract fields only;
    none is applied; the worker keeps running; the figures equal the oracle's recount of
    the valid events; the replay's watermark ignores the far-future events; and the
    rejection counters by source and reason equal what was sent."""
    partitions = int(pipeline.env["DEMANDMON_PARTITIONS"])
    valid, _ = generate_stream("sample", seed=7, duplicates=0.05, shuffle=True)
    last_time = max(str(e["occurred_at"]) for e in valid)
    group_1, group_2 = _hostile(last_time)
    kinds = group_1 + group_2
    after = _after_events(partitions, last_time)
    third = len(valid) // 3
    chunks = [valid[:third], valid[third : 2 * third], valid[2 * third :]]
    oracle = Oracle()
    for e in [*valid, *after]:
        oracle.feed(e, SOURCE)
    expected = {k: round(v, 6) for k, v in oracle.samples(SOURCE).items()}

    pipeline.run("topics")
    register_source(pipeline.stack.redis_url, pipeline.prefix, SOURCE)
    worker = pipeline.start_worker()
    pipeline.start_exporter()
    kafka, topic = pipeline.stack.kafka, pipeline.topic
    send_records(kafka, topic, _records(chunks[0], ON_SOURCE))
    for group, chunk in ((group_1, chunks[1]), (group_2, chunks[2])):
        placed = send_records(kafka, topic, [(h.key, h.value, h.headers) for h in group])
        for h, where in zip(group, placed, strict=True):
            h.placed = where
        send_records(kafka, topic, _records(chunk, ON_SOURCE))
    send_records(kafka, topic, _records(after, ON_SOURCE))

    def figures() -> dict[SampleKey, float]:
        return source_figures(scrape(pipeline.metrics_url), SOURCE, NOT_RECOUNTED)

    got = _wait_quiet(figures, lambda g: g == expected, timeout_s=90, stall_s=20) or {}
    wanted = {h.placed: h for h in kinds}
    letters = read_topic(
        kafka,
        pipeline.deadletter,
        lambda recs: wanted.keys() <= {_placed(r) for r in recs},
        timeout_s=20,
    )

    problems: list[str] = []
    if worker.poll() is not None:
        problems.append(f"the worker exited (code {worker.returncode}):\n{pipeline.logs()}")
    by_place: dict[tuple[int, int], list[Any]] = {}
    for record in letters:
        by_place.setdefault(_placed(record), []).append(record)
    for h in kinds:
        found = by_place.get(h.placed, [])
        if not found:
            problems.append(f"{h.name}: no dead letter (expected reason {h.reason})")
            continue
        head = _headers(found[0])
        reason = head.get("demandmon-reason", b"").decode()
        if reason != h.reason:
            problems.append(f"{h.name}: dead-lettered as {reason!r}, expected {h.reason!r}")
        if head.get("demandmon-topic") != topic.encode():
            problems.append(f"{h.name}: demandmon-topic is {head.get('demandmon-topic')!r}")
        if head.get("demandmon-source") != h.source.encode():
            problems.append(
                f"{h.name}: demandmon-source is {head.get('demandmon-source')!r}, "
                f"expected {h.source!r}"
            )
        problems.extend(_check_value(h.name, found[0]))
    applied = _ids_in_redis(pipeline.redis(), pipeline.prefix, "HX-*")
    for h in kinds:
        if _incident(h) in applied:
            problems.append(f"{h.name}: applied to the state (incident {_incident(h)} is in Redis)")
    known = {_incident(h) for h in kinds}
    if applied - known:
        problems.append(f"hostile incidents applied to the state: {sorted(applied - known)}")

    # The figures are the recount of the valid events alone, the last ones included.
    if got != expected:
        missing_after = [e["incident_id"] for e in after if not _applied_after(pipeline, e)]
        problems.append(
            "figures differ from the oracle's recount of the valid events"
            + (f" (events sent after the hostile ones not applied: {missing_after})"
               if missing_after else "")
            + f"; {figures_diff(got, expected)}"
        )  # fmt: skip
        if missing_after:
            problems.append(f"worker errors: {_worker_errors(pipeline)}")
    samples = scrape(pipeline.metrics_url)
    for other in ("live", "unknown"):
        stray = {
            k: v
            for k, v in source_figures(samples, other, NOT_RECOUNTED).items()
            if k[0] != "demand_stream_watermark_timestamp_seconds"
        }
        if stray:
            problems.append(f"source {other!r} has figures but was sent no valid event: {stray}")
    watermark = ("demand_stream_watermark_timestamp_seconds", (("source", SOURCE),))
    if samples.get(watermark) != oracle.watermark(SOURCE):
        problems.append(
            f"year_9999_on_replay / occurred_at_two_days_ahead_on_replay: {SOURCE} watermark "
            f"is {samples.get(watermark)}, the valid events' is {oracle.watermark(SOURCE)}"
        )

    want_rejected = Counter((h.source, h.reason) for h in kinds)
    got_rejected = {
        (dict(labels)["source"], dict(labels)["reason"]): v
        for (name, labels), v in samples.items()
        if name == "demand_events_rejected_total" and v
    }
    for pair in sorted(set(want_rejected) | set(got_rejected)):
        if got_rejected.get(pair, 0) != want_rejected.get(pair, 0):
            names = [h.name for h in kinds if (h.source, h.reason) == pair]
            problems.append(
                f"demand_events_rejected_total{{source={pair[0]},reason={pair[1]}}} is "
                f"{got_rejected.get(pair, 0):.0f}, sent {want_rejected.get(pair, 0)} "
                f"(kinds: {', '.join(names) or 'none'})"
            )
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems)


def _worker_errors(pipeline: Pipeline, most: int = 4) -> list[str]:
    """The first error lines of the worker logs (what stopped it, if anything did)."""
    lines = []
    for path in sorted(pipeline.workdir.glob("worker-*.log")):
        for line in path.read_text(errors="replace").splitlines():
            if "ERROR" in line or "Crashed" in line or line.startswith(("Traceback", "Error")):
                lines.append(line.strip()[:300])
    return lines[:most]


def _incident(kind: Kind) -> str | None:
    """The incident id inside a hostile message, when it has one to find."""
    raw = kind.value or b""
    for text in (raw, raw.decode("utf-16", "ignore").encode("utf-8", "ignore")):
        found = re.search(rb'"incident_id": "([^"]+)"', text)
        if found:
            return found.group(1).decode()
    return None


def _placed(record: Any) -> tuple[int, int]:
    head = _headers(record)
    try:
        return int(head["demandmon-partition"]), int(head["demandmon-offset"])
    except (KeyError, ValueError):
        return (-2, -2)


def _applied_after(pipeline: Pipeline, event: dict[str, Any]) -> bool:
    return event["incident_id"] in _ids_in_redis(pipeline.redis(), pipeline.prefix, "AFTER/*")


# -- personal data ---------------------------------------------------------------------

CANARY_SOURCE = "canary-replay"


def _grep(paths: list[Path], needle: bytes) -> list[str]:
    """Files (of ``paths``, recursively) that hold ``needle``; read in overlapping chunks."""
    hits = []
    for root in paths:
        for path in [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()):
            tail = b""
            with open(path, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    if needle in tail + chunk:
                        hits.append(str(path))
                        break
                    tail = chunk[-len(needle) :]
    return hits


def _redis_holds(client: Any, prefix: str, needle: bytes) -> list[str]:
    """Keys under ``prefix`` whose name or content holds ``needle``, read type by type
    (DUMP alone could hide it: RDB serialisation compresses long strings)."""
    hits = []
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        kind = client.type(key).decode()
        if kind == "string":
            parts = [client.get(key) or b""]
        elif kind == "hash":
            parts = [b for kv in client.hgetall(key).items() for b in kv]
        elif kind == "set":
            parts = list(client.smembers(key))
        elif kind == "zset":
            parts = [m for m, _ in client.zrange(key, 0, -1, withscores=True)]
        elif kind == "list":
            parts = client.lrange(key, 0, -1)
        elif kind == "stream":
            parts = [b for _, fields in client.xrange(key) for kv in fields.items() for b in kv]
        else:
            parts = []
        parts += [key, client.dump(key) or b""]
        if any(needle in p for p in parts):
            hits.append(f"{key.decode(errors='replace')} ({kind})")
    return hits


def test_personal_data_canary_goes_nowhere(pipeline: Pipeline) -> None:
    """A unique canary in ``summary`` and in a nested unknown field, of valid and of
    rejected events (and as a bad source header), is found afterwards in no Redis key or
    Redis data file, no worker or exporter log, no /metrics page and no dead letter."""
    canary = f"CANARY-{uuid.uuid4().hex}"
    pii = {"summary": f"{canary} says her neighbour is unwell", "notes": {"x": {"who": canary}}}
    valid, _ = generate_stream("sample", seed=9)
    valid = [({**e, **pii} if i % 5 == 0 else e) for i, e in enumerate(valid)]
    oracle = Oracle()
    for e in valid:
        oracle.feed(e, CANARY_SOURCE)
    expected = {k: round(v, 6) for k, v in oracle.samples(CANARY_SOURCE).items()}
    at = max(str(e["occurred_at"]) for e in valid)
    first = valid[0]
    long_ago = (datetime.fromisoformat(at.replace("Z", "+00:00")) - timedelta(days=60)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )

    def bad(name: str, **fields: Any) -> dict[str, Any]:
        return {**created(f"CX-{name}", f"cx-{name}", at), **pii, **fields}

    src = [(HEADER, CANARY_SOURCE.encode())]
    invalid: list[tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]] = [
        ("schema_violation", b"CX-bcu", dumps(bad("bcu", bcu="XX")), src),
        ("malformed_json", b"CX-cut", dumps(bad("cut"))[:-5], src),
        ("repeated_name", b"CX-dup", dumps(bad("dup"))[:-1] + b', "bcu": "AW"}', src),
        ("number_1e400", b"CX-inf", dumps(bad("inf"))[:-1] + b', "n": 1e400}', []),
        ("key_mismatch", b"CX-other", dumps(bad("key")), src),
        ("bad_source_header_is_canary", b"CX-hdr", dumps(bad("hdr")), [(HEADER, canary.encode())]),
        ("oversized", b"CX-big", dumps(bad("big", pad="y" * 70_000)), src),
        ("too_far_future", b"CX-9999", dumps(bad("9999", occurred_at="9999-01-01T00:00:00Z")),
         src),
        # Same incident (so the same partition) as an applied event, 60 days earlier.
        ("too_late", str(first["incident_id"]).encode(),
         dumps({**first, **pii, "event_id": "cx-late", "type": "closed", "occurred_at": long_ago,
                "bcu": "SE"}), src),
    ]  # fmt: skip
    pipeline.run("topics")
    register_source(pipeline.stack.redis_url, pipeline.prefix, CANARY_SOURCE)
    # At debug level, so that the log check covers every line the worker can write.
    pipeline.start("worker", "--loglevel", "debug")
    pipeline.start_exporter()
    kafka = pipeline.stack.kafka
    send_records(kafka, pipeline.topic, _records(valid, src))
    placed = send_records(kafka, pipeline.topic, [(k, v, h) for _, k, v, h in invalid])
    kind_at = {where: name for where, (name, *_) in zip(placed, invalid, strict=True)}

    def figures() -> dict[SampleKey, float]:
        return source_figures(scrape(pipeline.metrics_url), CANARY_SOURCE, NOT_RECOUNTED)

    # Wait for the valid events and the dead letters; what is missing is asserted after the
    # leaks (this test is about where the canary goes).
    got = _wait_quiet(figures, lambda g: g == expected, timeout_s=60, stall_s=15) or {}
    letters = read_topic(
        kafka, pipeline.deadletter, lambda recs: len(recs) >= len(invalid), timeout_s=20
    )

    needle = canary.encode()
    leaks: list[str] = []
    client = pipeline.redis()
    assert isinstance(client, redis.Redis)  # its AOF is read below: one Redis
    leaks += [f"Redis key {k}" for k in _redis_holds(client, pipeline.prefix, needle)]

    # On disk: what Redis wrote since the last rewrite (every write, even one later
    # undone), then a full rewrite as plain commands (an RDB-format base compresses
    # strings, which could hide the canary). A control string proves the grep sees data.
    data = aof_dir(client)
    leaks += [f"Redis AOF file {f} (before rewrite)" for f in _grep([data], needle)]
    control = f"CONTROL-{uuid.uuid4().hex}"
    client.set(f"{pipeline.prefix}:canary-control", control)
    preamble = str(client.config_get("aof-use-rdb-preamble")["aof-use-rdb-preamble"])
    client.config_set("aof-use-rdb-preamble", "no")
    try:
        rewrite_aof(client)
    finally:
        client.config_set("aof-use-rdb-preamble", preamble)
        client.delete(f"{pipeline.prefix}:canary-control")
    assert _grep([data], control.encode()), "the grep of the Redis files cannot see data"
    leaks += [f"Redis AOF file {f} (after rewrite)" for f in _grep([data], needle)]

    logs = sorted(pipeline.workdir.glob("*.log"))
    assert any(p.name.startswith("worker") for p in logs), f"no worker log among {logs}"
    assert any(p.name.startswith("exporter") for p in logs), f"no exporter log among {logs}"
    leaks += [f"log {f}" for f in _grep(logs, needle)]

    worker_url = f"http://127.0.0.1:{pipeline.env['DEMANDMON_WORKER_WEB_PORT']}/metrics"
    for name, url in (("exporter", pipeline.metrics_url), ("worker", worker_url)):
        with urllib.request.urlopen(url, timeout=30) as response:
            if needle in response.read():
                leaks.append(f"{name} /metrics")

    for record in letters:
        parts = [record.key or b"", record.value or b""]
        for name, value in record.headers or []:
            parts += [name.encode(), value]
        if any(needle in p for p in parts):
            reason = _headers(record).get("demandmon-reason", b"?").decode()
            leaks.append(f"dead letter of {kind_at.get(_placed(record), '?')} ({reason})")

    assert not leaks, f"the canary {canary} was found in: " + "; ".join(leaks)
    assert got == expected, (
        f"the valid canary events did not give the oracle's figures; {figures_diff(got, expected)}"
    )
    reasons = Counter(_headers(r).get("demandmon-reason", b"?").decode() for r in letters)
    assert len(letters) >= len(invalid), (
        f"only {len(letters)} of {len(invalid)} rejected canary events were dead-lettered "
        f"(reasons seen: {dict(reasons)}; sent: {[name for name, *_ in invalid]})"
    )
