"""The synthetic stream generator, checked by the independent oracle (never by its own
bookkeeping): exact briefing totals, determinism, duplicates and shuffling, realism."""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from streams.generate import PROFILES, generate_events, generate_stream
from streams.generate.cli import main
from streams.generate.profiles import ALL_PROFILES
from streams.generate.writer import write_jsonl
from tests.oracle import Oracle, epoch, evaluate_totals, total

BIG = ("met-nov-2022", "met-nov-2023", "categories-2022", "categories-2023")
CATEGORY_TABLE = {  # design.md: (2022 incidents, deployed), (2023 incidents, deployed)
    "concern_for_safety": ((4292, 2284), (3126, 919)),
    "mental_health": ((2583, 547), (2374, 294)),
    "vulnerable": ((1205, 700), (1110, 522)),
    "collapse_illness_injury_trapped": ((818, 272), (505, 93)),
    "welfare_check_partner": ((74, 38), (29, 12)),
}
EVENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
INCIDENT_ID = re.compile(r"[A-Za-z0-9._:/-]{1,64}")
RESOURCE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|\+00:00)")


@cache
def _events(profile: str, seed: int) -> list[dict[str, object]]:
    return generate_events(profile, seed)


@cache
def _report(profile: str, seed: int) -> dict[str, Any]:
    return evaluate_totals(_events(profile, seed), profile)


def events_of(profile: str, seed: int = 1) -> list[dict[str, object]]:
    """Each profile and seed is generated once per session."""
    return _events(profile, seed)


def report_of(profile: str, seed: int = 1) -> dict[str, Any]:
    return _report(profile, seed)


def samples(events: list[dict[str, object]]) -> dict[Any, float]:
    oracle = Oracle()
    for event in events:
        oracle.feed(event, "s")
    return oracle.samples("s")


def test_profile_names() -> None:
    for name in (*BIG, "sample", "breach"):
        assert name in PROFILES


@pytest.mark.parametrize("year", [2022, 2023])
def test_categories_profiles_match_the_design_table_to_the_unit(year: int) -> None:
    report = report_of(f"categories-{year}")
    got = {c["category"]: (c["incidents"], c["deployed"]) for c in report["categories"]}
    want = {cat: rows[year - 2022] for cat, rows in CATEGORY_TABLE.items()}
    assert got == want
    assert (report["total"]["incidents"], report["total"]["deployed"]) == (
        (8972, 3841) if year == 2022 else (7144, 1840)
    )
    assert report["total"]["deployment_rate"] == (0.428 if year == 2022 else 0.258)


@pytest.mark.parametrize(
    ("year", "incidents", "deployed", "rate"),
    [(2022, 33380, 13305, 0.399), (2023, 27872, 7310, 0.262)],
)
def test_met_nov_profiles_match_the_briefing_totals(
    year: int, incidents: int, deployed: int, rate: float
) -> None:
    report = report_of(f"met-nov-{year}")
    assert report["total"] == {
        "incidents": incidents,
        "deployed": deployed,
        "deployment_rate": rate,
    }
    assert report["period"] == {"from": f"{year}-11-01T00:00:00Z", "to": f"{year}-11-29T00:00:00Z"}
    assert report["events"]["rejected"]["too_late"] == 0


@pytest.mark.parametrize("kind", ["met-nov", "categories"])
def test_igrade_down_18_6_percent_and_s136_down_200(kind: str) -> None:
    old, new = report_of(f"{kind}-2022"), report_of(f"{kind}-2023")
    assert new["igrade_incidents"] == round(0.814 * old["igrade_incidents"])
    assert new["open_incidents"] == round(0.814 * old["open_incidents"])
    assert 200 <= old["s136"]["detentions"] - new["s136"]["detentions"] <= 250
    for report in (old, new):
        incidents = report["total"]["incidents"] + report["not_rcrp"]["incidents"]
        assert 0.20 <= report["igrade_incidents"] / incidents <= 0.30
        assert report["open_incidents"] > 0


@pytest.mark.parametrize("profile", BIG)
def test_officer_hours_per_deployment(profile: str) -> None:
    report = report_of(profile)
    assert 5.0 <= report["officer_hours"] / report["deployed_incidents"] <= 6.5
    s136 = report["s136"]
    # Officers x unit time on s136 incidents (the briefing: about 22.5 h a detention), and
    # detention time, detained to handover.
    assert 15.0 <= s136["officer_hours"] / s136["detentions"] <= 30.0
    assert 4.0 <= s136["detention_hours"] / s136["detentions"] <= 12.0
    assert 0 < s136["handovers_over_60_min"] < s136["handovers"]


@pytest.mark.parametrize("profile", BIG)
def test_size_limits_and_period(profile: str) -> None:
    events = events_of(profile)
    assert len(events) <= (350_000 if profile.startswith("met") else 120_000)
    prof = ALL_PROFILES[profile]
    times = [epoch(str(e["occurred_at"])) for e in events]
    assert times == sorted(times)  # file order is time order
    assert prof.start <= times[0] and times[-1] <= prof.end + 3 * 3600


def test_events_follow_the_contract() -> None:
    events = events_of("categories-2023")
    ids = [e["event_id"] for e in events]
    assert len(set(ids)) == len(ids)
    for event in events:
        assert event["schema"] == "cad.incident-event/1"
        assert EVENT_ID.fullmatch(str(event["event_id"]))
        assert INCIDENT_ID.fullmatch(str(event["incident_id"]))
        assert TIMESTAMP.fullmatch(str(event["occurred_at"]))
        if "resource_id" in event:
            assert RESOURCE_ID.fullmatch(str(event["resource_id"]))
        if event["type"] == "created":
            assert event["caller"] in (
                "public",
                "partner_health",
                "partner_social_care",
                "partner_other",
            )
            assert "bcu" in event and "opening_code" in event
        if event["type"] == "resource_assigned":
            assert event["officers"] in (1, 2)
        assert len(json.dumps(event)) < 1024


def test_events_pass_the_project_contract_model() -> None:
    contract = pytest.importorskip("schemas.contract")
    for profile in ("sample", "breach"):
        for event in events_of(profile):
            contract.validate_event(event)
    for event in events_of("categories-2022")[::50]:
        contract.validate_event(event)


def test_streams_look_like_real_demand() -> None:
    events = events_of("categories-2022")
    created = [e for e in events if e["type"] == "created"]
    by_bcu = Counter(str(e["bcu"]) for e in created)
    assert len(by_bcu) == 12 and by_bcu["NW"] > 1.8 * by_bcu["CN"]
    hours = Counter(int(str(e["occurred_at"])[11:13]) for e in created)
    assert hours[19] > 3 * hours[5]
    kinds = Counter(str(e["type"]) for e in events)
    for kind in (
        "graded",
        "classified",
        "resource_arrived",
        "resource_cleared",
        "closed",
        "cancelled",
    ):
        assert kinds[kind] > 100, kind
    for kind in ("s136_detained", "s136_arrived_pos", "s136_handover"):
        assert kinds[kind] > 400, kind
    assert 0.05 < sum(1 for e in created if "summary" in e) / len(created) < 0.25
    codes = Counter(str(e["opening_code"]) for e in created)
    for code in ("ASB", "THEFT", "ROAD_TRAFFIC_COLLISION", "DOMESTIC", "ASSAULT", "WELFARE_CHECK"):
        assert codes[code] > 0, code
    # regrades: an incident graded twice or graded after a grade on created
    grades: dict[str, list[str]] = {}
    for e in events:
        if e["type"] == "graded" or (e["type"] == "created" and "grade" in e):
            grades.setdefault(str(e["incident_id"]), []).append(str(e["grade"]))
    regraded = sum(1 for g in grades.values() if len(set(g)) > 1)
    assert 0.04 < regraded / len(created) < 0.12


def test_determinism_by_seed(tmp_path: Path) -> None:
    assert generate_events("sample", 7) == generate_events("sample", 7)
    plain, packed = tmp_path / "a.jsonl", tmp_path / "b.jsonl.gz"
    for out in (plain, packed):  # two independent runs of the same seed
        assert main(["--profile", "categories-2023", "--seed", "3", "--out", str(out)]) == 0
    assert gzip.decompress(packed.read_bytes()) == plain.read_bytes()
    events = [json.loads(line) for line in plain.read_bytes().splitlines()]
    write_jsonl(tmp_path / "c.jsonl.gz", events)
    assert (tmp_path / "c.jsonl.gz").read_bytes() == packed.read_bytes()  # gzip: no mtime
    assert events != events_of("categories-2023")  # seed 1
    other = evaluate_totals(events, "x")
    for key in ("categories", "total", "igrade_incidents", "open_incidents"):
        assert other[key] == report_of("categories-2023")[key]
    assert other["s136"]["detentions"] == report_of("categories-2023")["s136"]["detentions"]


def test_duplicates_and_shuffle_change_no_figure() -> None:
    base = events_of("categories-2023")
    want = samples(base)
    mixed, _ = generate_stream("categories-2023", 1, duplicates=0.1, shuffle=True)
    assert len(mixed) == len(base) + round(0.1 * len(base))
    assert [e["event_id"] for e in mixed] != [e["event_id"] for e in base]
    assert sorted(map(json.dumps, mixed)) != sorted(map(json.dumps, base))
    got = samples(mixed)
    dup_key = ("demand_events_duplicate_total", (("source", "s"),))
    assert got.pop(dup_key) == round(0.1 * len(base))
    assert got == pytest.approx(want, rel=1e-9)  # float sums in another order
    dupes, _ = generate_stream("sample", 1, duplicates=0.5)
    seen: set[object] = set()
    firsts = []
    for event in dupes:  # each repeat comes after its original: first sightings = the stream
        if event["event_id"] not in seen:
            seen.add(event["event_id"])
            firsts.append(event)
        else:
            assert event in events_of("sample")
    assert firsts == events_of("sample")
    assert len(dupes) == len(firsts) + round(0.5 * len(firsts))


def test_shuffled_file_puts_follow_ups_before_created() -> None:
    mixed, _ = generate_stream("sample", 1, shuffle=True)
    seen: set[object] = set()
    early = 0
    for event in mixed:
        if event["type"] == "created":
            seen.add(event["incident_id"])
        elif event["incident_id"] not in seen:
            early += 1
    assert early > 10
    assert samples(mixed) == pytest.approx(samples(events_of("sample")), rel=1e-9)


def test_breach_profile() -> None:
    s = samples(events_of("breach"))

    def rate(bcu: str) -> float:
        inc = total(s, "demand_rcrp_incidents", bcu=bcu, category="mental_health", window="24h")
        dep = total(
            s, "demand_rcrp_deployed_incidents", bcu=bcu, category="mental_health", window="24h"
        )
        return dep / inc if inc else 0.0

    assert rate("SE") == 24 / 28
    assert total(s, "demand_rcrp_incidents", bcu="SE", category="mental_health", window="1h") >= 16
    assert all(
        rate(b) < 0.6 for b in ("AW", "AS", "CE", "CN", "EA", "NA", "NE", "NW", "SN", "SW", "WA")
    )
    rcrp = [c for c in CATEGORY_TABLE]
    se = sum(total(s, "demand_rcrp_incidents", bcu="SE", category=c, window="24h") for c in rcrp)
    assert se >= 20  # the deployment-rate alert needs 20 RCRP incidents in 24 h
    deployed = {
        bcu: sum(total(s, "demand_rcrp_deployed_incidents", bcu=bcu, category=c) for c in rcrp)
        for bcu in ("AW", "AS", "CE", "CN", "EA", "NA", "NE", "NW", "SE", "SN", "SW", "WA")
    }
    assert [bcu for bcu, n in deployed.items() if n] == ["SE"]
    assert total(s, "demand_s136_long_wait_handovers", window="24h") == 1
    assert total(s, "demand_s136_handovers", bcu="SE", window="24h") == 2
    assert total(s, "demand_open_incidents") == 0
    i_graded = total(s, "demand_graded_incidents", grade="I", window="24h")
    assert total(s, "demand_attended_within_target_incidents", grade="I", window="24h") == i_graded


def test_sample_profile_is_small() -> None:
    report = report_of("sample")
    assert 40 <= report["total"]["incidents"] + report["not_rcrp"]["incidents"] <= 60
    times = [epoch(str(e["occurred_at"])) for e in events_of("sample")]
    assert max(times) - min(times) <= 6 * 3600


def test_cli_summary_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "s.jsonl"
    assert (
        main(["--profile", "sample", "--seed", "1", "--out", str(out), "--duplicates", "0.1"]) == 0
    )
    line = capsys.readouterr().out.strip()
    assert "\n" not in line and "incidents" in line and str(out) in line
    assert len(out.read_text().splitlines()) == len(events_of("sample")) + round(
        0.1 * len(events_of("sample"))
    )

    assert main(["--profile", "nope", "--seed", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown profile" in err

    assert (
        main(["--profile", "sample", "--seed", "1", "--out", str(tmp_path / "no" / "dir.jsonl")])
        == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot write" in err

    assert main(["--profile", "sample", "--seed", "x", "--out", str(out)]) == 2
    assert main(["--profile", "sample", "--seed", "1", "--out", str(out), "--duplicates", "2"]) == 2
    assert main(["--bogus"]) == 2
    assert not list(tmp_path.glob(".*.tmp"))
