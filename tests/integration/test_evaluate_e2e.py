"""Analysts' path end to end: generate the briefing's streams, replay them through real
Kafka, the worker and Redis, and `evaluate` prints the briefing's tables to the digit,
with every comparison figure equal to the oracle's recount of the same files."""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Pipeline
from tests.oracle import Oracle, total

pytestmark = pytest.mark.integration
BOTH = ("2022", "2023")

# The force's RCRP briefing (design brief), the figures the product must reproduce.
BRIEFING = {
    "cat-2022": [
        ("Concern for Safety", 4292, 2284, "53.2%"),
        ("Mental Health", 2583, 547, "21.2%"),
        ("Vulnerable", 1205, 700, "58.1%"),
        ("Collapse/Illness/Inj/Trapped", 818, 272, "33.3%"),
        ("Welfare Check Request (partners only)", 74, 38, "51.4%"),
        ("Total", 8972, 3841, "42.8%"),
    ],
    "cat-2023": [
        ("Concern for Safety", 3126, 919, "29.4%"),
        ("Mental Health", 2374, 294, "12.4%"),
        ("Vulnerable", 1110, 522, "47.0%"),
        ("Collapse/Illness/Inj/Trapped", 505, 93, "18.4%"),
        ("Welfare Check Request (partners only)", 29, 12, "41.4%"),
        ("Total", 7144, 1840, "25.8%"),
    ],
}


def _rows(table: str) -> list[tuple[str, int, int, str]]:
    """The category table of one source: from its header line to the next blank line."""
    lines = table.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("category "))
    rows = []
    for line in lines[start + 1 : lines.index("", start)]:
        parts = line.rsplit(maxsplit=3)
        if len(parts) == 4 and parts[3].endswith("%") and parts[1].replace(",", "").isdigit():
            rows.append(
                (
                    parts[0].strip(),
                    int(parts[1].replace(",", "")),
                    int(parts[2].replace(",", "")),
                    parts[3],
                )
            )
    return rows


def _recount(path: Path, source: str) -> dict[str, Any]:
    """The oracle's recount of a generated file: the figures `evaluate` compares."""
    oracle = Oracle()
    with gzip.open(path, "rt") as lines:
        for line in lines:
            oracle.feed(json.loads(line), source)
    figs = oracle.incident_figures(source)
    rcrp = [f for f in figs if f.category != "not_rcrp"]
    detained = [f for f in figs if f.detained]
    return {
        "incidents": len(rcrp),
        "deployed": sum(f.deployed for f in rcrp),
        "officer_hours": sum(f.officer_s for f in rcrp) / 3600,
        "igrade_incidents": sum(f.grade == "I" for f in figs),
        "open_incidents": round(total(oracle.samples(source), "demand_open_incidents")),
        "attendance": {
            g: (
                sum(f.grade == g for f in figs),
                sum(f.grade == g and f.attended_in_target for f in figs),
            )
            for g in ("I", "S")
        },
        "s136_detentions": len(detained),
        "s136_detention_hours": sum(f.detention_s or 0.0 for f in detained) / 3600,
        "s136_officer_hours": sum(f.s136_officer_s for f in detained) / 3600,
    }


def _reported(doc: dict[str, Any]) -> dict[str, Any]:
    """The same figures from `evaluate --format json` (hours to 0.1 h)."""
    return {
        "incidents": doc["total"]["incidents"],
        "deployed": doc["total"]["deployed"],
        "officer_hours": doc["officer_hours"],
        "igrade_incidents": doc["igrade_incidents"],
        "open_incidents": doc["open_incidents"],
        "attendance": {
            g: (doc["attendance"][g]["incidents"], doc["attendance"][g]["within_target"])
            for g in ("I", "S")
        },
        "s136_detentions": doc["s136"]["detentions"],
        "s136_detention_hours": doc["s136"]["detention_hours"],
        "s136_officer_hours": doc["s136"]["officer_hours"],
    }


def _headline(old: dict[str, Any], new: dict[str, Any]) -> str:
    was, now = (round(r["deployed"] / r["incidents"] * 100, 1) for r in (old, new))
    points = round(now * 10 - was * 10) / 10
    sign = "\u2212" if points < 0 else "+" if points > 0 else ""
    return f"RCRP deployment rate {was:.1f}% \u2192 {now:.1f}% ({sign}{abs(points):.1f} points)"


def _assert_meets_oracle(doc: dict[str, Any], want: dict[str, Any]) -> None:
    got = _reported(doc)
    for key in ("officer_hours", "s136_detention_hours", "s136_officer_hours"):
        # evaluate rounds a sum of whole ms to 0.1 h; the oracle sums seconds as floats.
        assert got.pop(key) == pytest.approx(want[key], abs=0.0501), key
    assert got == {k: v for k, v in want.items() if not k.endswith("hours")}


def test_briefing_tables_reproduced_through_the_pipeline(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    pipeline.run("topics")
    pipeline.start_worker()
    for profile, source in (("categories-2022", "cat-2022"), ("categories-2023", "cat-2023")):
        out = tmp_path / f"{profile}.jsonl.gz"
        pipeline.run("generate", "--profile", profile, "--seed", "7", "--out", str(out))
        replay = pipeline.run("replay", str(out), "--source", source, "--quiet")
        assert "events/s" in replay.stdout
    for source, rows in BRIEFING.items():
        table = pipeline.run("evaluate", "--source", source, "--wait", "600").stdout
        assert _rows(table) == rows, table

    both = pipeline.run(
        "evaluate",
        "--source",
        "cat-2023",
        "--against",
        "cat-2022",
        "--format",
        "json",
        "--plot",
        str(tmp_path / "cmp.png"),
    )
    doc = json.loads(both.stdout)
    assert doc["source"] == "cat-2023" and doc["against"]["source"] == "cat-2022"
    assert doc["period"] == {"from": "2023-11-01T00:00:00Z", "to": "2023-11-29T00:00:00Z"}
    assert doc["total"] == {"incidents": 7144, "deployed": 1840, "deployment_rate": 0.258}
    assert [c["category"] for c in doc["categories"]] == [
        "concern_for_safety",
        "mental_health",
        "vulnerable",
        "collapse_illness_injury_trapped",
        "welfare_check_partner",
    ]
    for key in ("by_bcu", "igrade_incidents", "s136", "officer_hours", "events"):
        assert key in doc
    assert sum(b["incidents"] for b in doc["by_bcu"]) == 7144
    assert doc["comparison"]["deployments_avoided"] == 3841 - 1840
    assert doc["events"]["rejected"] == {"invalid": 0, "too_late": 0}
    assert (tmp_path / "cmp.png").stat().st_size > 10_000

    # Every comparison figure is the oracle's recount of the files replayed.
    old, new = (_recount(tmp_path / f"categories-{y}.jsonl.gz", f"cat-{y}") for y in BOTH)
    _assert_meets_oracle(doc, new)
    _assert_meets_oracle(doc["against"], old)
    assert doc["headline"] == doc["comparison"]["headline"] == _headline(old, new)
    assert new["s136_detentions"] > 0 and new["s136_officer_hours"] > 0

    # The four formats lead with the headline and carry the same figures.
    args = ("evaluate", "--source", "cat-2023", "--against", "cat-2022", "--format")
    table = pipeline.run(*args, "table").stdout
    markdown = pipeline.run(*args, "markdown").stdout
    csv_rows = list(csv.DictReader(io.StringIO(pipeline.run(*args, "csv").stdout)))
    assert table.splitlines()[0] == doc["headline"]
    assert markdown.splitlines()[0] == f"**{doc['headline']}**"
    by_figure = {r["figure"]: r for r in csv_rows if not r["category"]}
    for figure in doc["comparison"]["figures"]:
        got = by_figure[figure["figure"]]
        for column, key in (
            ("cat-2022", "baseline"),
            ("cat-2023", "subject"),
            ("change", "change"),
        ):
            assert got[column] == ("" if figure[key] is None else str(figure[key])), figure
        assert any(line.startswith(figure["label"] + "  ") for line in table.splitlines())
        assert f"| {figure['label']} | " in markdown

    one = ("evaluate", "--source", "cat-2023", "--format")
    assert "incidents,total,Total,count,7144" in pipeline.run(*one, "csv").stdout
    assert "| Total | 7,144 | 1,840 | 25.8% |" in pipeline.run(*one, "markdown").stdout


def test_month_of_met_demand_gives_the_briefing_s_headline_and_s136_hours(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    pipeline.run("topics")
    pipeline.start_worker()
    for year in ("2022", "2023"):
        out = tmp_path / f"met-{year}.jsonl.gz"
        pipeline.run("generate", "--profile", f"met-nov-{year}", "--seed", "3", "--out", str(out))
        pipeline.run("replay", str(out), "--source", f"nov-{year}", "--quiet")
    got = {}
    for year in ("2022", "2023"):
        doc = json.loads(
            pipeline.run(
                "evaluate", "--source", f"nov-{year}", "--format", "json", "--wait", "900"
            ).stdout
        )
        got[year] = (
            doc["total"]["incidents"],
            doc["total"]["deployed"],
            round(doc["total"]["deployment_rate"] * 100),
        )
    assert got == {"2022": (33380, 13305, 40), "2023": (27872, 7310, 26)}

    both = ("evaluate", "--source", "nov-2023", "--against", "nov-2022")
    table = pipeline.run(*both).stdout
    assert table.splitlines()[0] == "RCRP deployment rate 39.9% \u2192 26.2% (\u221213.7 points)"
    doc = json.loads(pipeline.run(*both, "--format", "json").stdout)
    # The briefing: 200+ fewer detentions = 4,500+ officer hours (about 22.5 h each).
    assert doc["comparison"]["s136_officer_hours_saved"] > 4500
    for report in (doc, doc["against"]):
        assert 15 <= report["s136"]["officer_hours_per_detention"] <= 30, report["s136"]


def test_evaluate_says_when_a_source_is_unknown(pipeline: Pipeline) -> None:
    result = pipeline.run("evaluate", "--source", "no-such-source", check=False)
    assert result.returncode == 1
    assert "unknown source 'no-such-source'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
