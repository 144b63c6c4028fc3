"""`demandmon open` and the exporter's /open-incidents, end to end: a stream with open,
closed, cancelled, attended and past-target incidents (regrades, reclassifications,
duplicates, shuffled, free text in `summary`) is replayed through real Kafka and the real
worker into Redis; the command's JSON and the endpoint's equal a list recounted in plain
Python from the event file, filters and caps included, and hostile queries are refused."""

from __future__ import annotations

import json
import random
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from demandmon.web import http_get, metrics_get
from tests.conftest import Pipeline, Stack, pipeline_on
from tests.helpers import scrape, wait_for
from tests.integration.test_secure_pipeline import (  # the "secure_pipeline" fixture
    SecurePipeline,
    secure_pipeline,  # noqa: F401
)
from tests.oracle import category_of

pytestmark = pytest.mark.integration

SOURCE = "openlist"
START = datetime(2025, 1, 10, 8, 0, tzinfo=UTC)
END = datetime(2025, 1, 10, 12, 0, tzinfo=UTC)  # the last event: the watermark
BCUS = ("AW", "AS", "CE", "CN", "EA", "NA", "NE", "NW", "SE", "SN", "SW", "WA")
CODES = ("MENTAL_HEALTH", "WELFARE_CHECK", "CONCERN_FOR_SAFETY", "COLLAPSE", "BURGLARY")
CALLERS = ("public", "partner_health", "partner_other")
PERSONAL = "Jane Doe 07700 900123"


def _at(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _stream(seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []

    def add(iid: str, n: int, kind: str, t: datetime, **fields: Any) -> None:
        events.append(
            {
                "schema": "cad.incident-event/1",
                "event_id": f"{iid.replace('/', '.')}.{n}",
                "incident_id": iid,
                "type": kind,
                "occurred_at": _at(t),
                **fields,
            }
        )

    def incident(iid: str, created: datetime, grade: str | None, fate: str) -> None:
        extra = {"grade": grade} if grade else {}
        code, caller = rng.choice(CODES), rng.choice(CALLERS)
        add(iid, 0, "created", created, bcu=rng.choice(BCUS), opening_code=code,
            caller=caller, summary=PERSONAL, **extra)  # fmt: skip
        room = (END - created).total_seconds()
        step = [created + timedelta(seconds=rng.uniform(1, max(2, room)))]
        plain = iid.startswith("EDGE")  # the edge cases keep their grade and code
        if rng.random() < 0.3 and room > 60 and not plain:
            add(iid, 1, "graded", step[0], grade=rng.choice("ISER"))
        if rng.random() < 0.2 and room > 60 and not plain:
            add(iid, 2, "classified", step[0] - timedelta(seconds=0.5),
                opening_code=rng.choice(CODES))  # fmt: skip
        if fate in ("attended", "closed", "assigned"):
            add(iid, 3, "resource_assigned", created + timedelta(seconds=1), resource_id="R1",
                officers=rng.randint(1, 3))  # fmt: skip
        if fate in ("attended", "closed"):
            arrive = created + timedelta(seconds=min(room, rng.uniform(2, 7200)))
            add(iid, 4, "resource_arrived", arrive, resource_id="R1")
        if fate == "closed":
            add(iid, 5, "closed", END if rng.random() < 0.1 else step[0], summary=PERSONAL)
        if fate == "cancelled":
            add(iid, 6, "cancelled", step[0])

    fates = ("open", "open", "attended", "assigned", "closed", "cancelled")
    span = (END - START).total_seconds()
    for k in range(160):
        created = START + timedelta(milliseconds=rng.randrange(0, int(span * 1000)))
        grade = rng.choice(["I", "I", "S", "S", "E", "R", None])
        incident(f"CAD/2025/01/10/{k:05d}", created, grade, rng.choice(fates))
    # At the targets exactly (not past them) and just beyond (past them), not attended.
    incident("EDGE:I-at", END - timedelta(minutes=15), "I", "open")
    incident("EDGE:I-past", END - timedelta(minutes=15, milliseconds=1), "I", "open")
    incident("EDGE:S-at", END - timedelta(minutes=60), "S", "open")
    incident("EDGE:S-past", END - timedelta(minutes=60, seconds=1), "S", "open")
    incident("EDGE:last", END, "I", "open")
    events = [e for e in events if e["occurred_at"] <= _at(END)]
    events += rng.sample(events, 25)  # duplicates: the same event again
    rng.shuffle(events)
    return events


def _ms(text: str) -> int:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def oracle_open(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The open list recounted from the events: latest grade and code by event time,
    attended once a resource arrived, open unless closed or cancelled, ages and targets
    at the latest event time, oldest first."""
    seen: set[tuple[str, str]] = set()
    by_incident: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        if (e["incident_id"], e["event_id"]) not in seen:
            seen.add((e["incident_id"], e["event_id"]))
            by_incident.setdefault(e["incident_id"], []).append(e)
    end = max(_ms(e["occurred_at"]) for e in events)
    out: list[tuple[int, str, dict[str, Any]]] = []
    for iid, evs in by_incident.items():
        kinds = {e["type"] for e in evs}
        if "closed" in kinds or "cancelled" in kinds or "created" not in kinds:
            continue
        created = next(e for e in evs if e["type"] == "created")
        grades = [(_ms(e["occurred_at"]), e["grade"]) for e in evs if e.get("grade")]
        codes = [(_ms(e["occurred_at"]), e["opening_code"]) for e in evs if "opening_code" in e]
        grade = max(grades)[1] if grades else "U"
        age_ms = end - _ms(created["occurred_at"])
        attended = "resource_arrived" in kinds
        target_ms = {"I": 15 * 60_000, "S": 60 * 60_000}.get(grade)
        out.append(
            (
                _ms(created["occurred_at"]),
                iid,
                {
                    "incident_id": iid,
                    "bcu": created["bcu"],
                    "category": category_of(max(codes)[1], created["caller"]),
                    "grade": grade,
                    "age_seconds": age_ms // 1000,
                    "attended": attended,
                    "past_target": target_ms is not None and not attended and age_ms > target_ms,
                },
            )
        )
    return [row for _, _, row in sorted(out, key=lambda item: item[:2])]


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_open_list_equals_the_recount(pipeline: Pipeline, tmp_path: Path) -> None:
    check_open_list(pipeline, tmp_path)


def test_open_list_on_a_redis_cluster(cluster_stack: Stack, tmp_path: Path) -> None:
    """The same through redis-py's cluster clients, on three masters: every read is a
    command on one key, routed to its node by the cluster pipeline."""
    with contextmanager(pipeline_on)(cluster_stack, tmp_path) as pipeline:
        assert pipeline.env["DEMANDMON_REDIS_CLUSTER"] == "true"
        check_open_list(pipeline, tmp_path)


def check_open_list(pipeline: Pipeline, tmp_path: Path) -> None:
    events = _stream(seed=12)
    want = oracle_open(events)
    assert len(want) > 40 and sum(r["past_target"] for r in want) > 5
    assert sum(r["attended"] for r in want) > 5
    by_id = {r["incident_id"]: r for r in want}
    assert not by_id["EDGE:I-at"]["past_target"] and by_id["EDGE:I-past"]["past_target"]
    assert not by_id["EDGE:S-at"]["past_target"] and by_id["EDGE:S-past"]["past_target"]

    path = tmp_path / "open.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    pipeline.run("topics")
    pipeline.run("replay", str(path), "--source", SOURCE, "--quiet")
    pipeline.start_worker()
    pipeline.start_exporter()
    src = (("source", SOURCE),)
    wait_for(
        lambda: scrape(pipeline.metrics_url),
        lambda s: (
            s.get(("demand_events_applied_total", src), 0)
            + s.get(("demand_events_duplicate_total", src), 0)
            >= len(events)
        ),
        180,
        "the worker to apply the stream",
    )

    # The command, JSON: the recount exactly (same age, order, marks).
    got = json.loads(pipeline.run("open", "--source", SOURCE, "--format", "json").stdout)
    assert got == want
    # The endpoint: the same.
    base = pipeline.metrics_url.replace("/metrics", "/open-incidents")
    status, headers, body = _get(f"{base}?source={SOURCE}")
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert json.loads(body) == want
    assert headers["X-Open-Incidents-Total"] == str(len(want))
    assert headers["X-Open-Incidents-Truncated"] == "false"
    assert PERSONAL.encode() not in body

    # The same definition as the gauges the wall shows.
    samples = scrape(pipeline.metrics_url)
    open_total = sum(
        v for (n, labels), v in samples.items() if n == "demand_open_incidents" and src[0] in labels
    )
    past_total = sum(
        v
        for (n, labels), v in samples.items()
        if n == "demand_open_incidents_past_target" and src[0] in labels
    )
    assert open_total == len(want)
    assert past_total == sum(r["past_target"] for r in want)

    # Filters and the cap.
    se_i = [r for r in want if r["bcu"] == "SE" and r["grade"] == "I"]
    args = ("open", "--source", SOURCE, "--format", "json", "--bcu", "SE", "--grade", "I")
    assert json.loads(pipeline.run(*args).stdout) == se_i
    assert json.loads(_get(f"{base}?source={SOURCE}&bcu=SE&grade=I")[2]) == se_i
    capped = pipeline.run("open", "--source", SOURCE, "--format", "json", "--limit", "7")
    assert json.loads(capped.stdout) == want[:7]
    assert f"showing the oldest 7 of {len(want)}" in capped.stderr
    status, headers, body = _get(f"{base}?source={SOURCE}&limit=7")
    assert json.loads(body) == want[:7]
    assert headers["X-Open-Incidents-Truncated"] == "true"

    # The table: one row per incident in the same order, the past-target ones marked.
    table = pipeline.run("open", "--source", SOURCE).stdout.splitlines()
    assert [line.split()[0] for line in table[1:-1]] == [r["incident_id"] for r in want]
    marked = [line.split()[0] for line in table[1:-1] if line.endswith("PAST")]
    assert marked == [r["incident_id"] for r in want if r["past_target"]]
    assert table[-1].startswith(f"{len(want)} open in {SOURCE} as of 2025-01-10T12:00:00Z")
    assert PERSONAL not in "\n".join(table)

    # live has no state here: an empty list, not an error.
    assert pipeline.run("open", "--format", "json").stdout == "[]\n"
    assert json.loads(_get(f"{base}?source=live")[2]) == []

    # Refused: one line and a non-zero exit; 400 (404: not a source) repeating nothing.
    for bad, code in [
        (("--source", "Nope!"), 2),
        (("--source", SOURCE, "--bcu", "XX"), 2),
        (("--source", SOURCE, "--grade", "Z"), 2),
        (("--source", SOURCE, "--limit", "0"), 2),
        (("--source", "nope"), 1),
    ]:
        result = pipeline.run("open", *bad, check=False)
        assert result.returncode == code, (bad, result.stderr)
        assert result.stdout == "" and result.stderr.count("\n") == 1
        assert result.stderr.startswith("demandmon open: ")
    hostile = [
        ("", 400),
        ("source=nope", 404),
        (f"source={SOURCE}&bcu=se", 400),
        (f"source={SOURCE}&grade=" + urllib.parse.quote("I' OR '1'='1"), 400),
        (f"source={SOURCE}&source=live", 400),
        (f"source={SOURCE}&limit=100000", 400),
        ("source=" + urllib.parse.quote("<script>"), 400),
        (f"source={SOURCE}%0d%0aSet-Cookie:%20x=1", 400),
        ("source=" + "a" * 2000, 400),
    ]
    for query, code in hostile:
        status, headers, body = _get(f"{base}?{query}")
        assert status == code, (query, status, body)
        assert b"script" not in body and b"Cookie" not in body and len(body) < 120
        assert "Set-Cookie" not in headers


def test_open_list_on_the_secure_stack(secure_pipeline: SecurePipeline) -> None:  # noqa: F811
    """On the secure stack: `demandmon open` reads as the reader role (Redis ACL user,
    TLS), and /open-incidents is HTTPS behind the same basic auth as /metrics."""
    pipe = secure_pipeline
    events = _stream(seed=7)
    want = oracle_open(events)
    path = pipe.workdir / "open.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    pipe.run("topics")
    pipe.run("replay", str(path), "--source", SOURCE, "--quiet")
    pipe.start("worker")
    pipe.start("exporter")
    got = wait_for(
        lambda: json.loads(pipe.run("open", "--source", SOURCE, "--format", "json").stdout),
        lambda rows: rows == want,
        180,
        "`demandmon open` to equal the recount",
    )
    assert got == want
    url = pipe.url("DEMANDMON_EXPORTER_PORT", f"/open-incidents?source={SOURCE}")
    exporter = pipe.settings("exporter")
    assert json.loads(metrics_get(exporter, url)) == want
    ca = exporter.prometheus_ca_file
    for username, password in [("", ""), (exporter.metrics_username, "wrong")]:
        with pytest.raises(urllib.error.HTTPError) as refused:
            http_get(url, ca_file=ca, username=username, password=password)
        assert refused.value.code == 401
