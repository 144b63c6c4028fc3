"""Analysts' path end to end: generate the briefing's streams, replay them through real
Kafka, the worker and Redis, and `evaluate` prints the briefing's tables to the digit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Pipeline

pytestmark = pytest.mark.integration

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
    rows = []
    for line in table.splitlines():
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

    for fmt, marker in (("csv", "cat-2023,total,7144,1840,0.258"), ("markdown", "| Total |")):
        assert marker in pipeline.run("evaluate", "--source", "cat-2023", "--format", fmt).stdout


def test_month_of_met_demand_gives_40_and_26_percent(pipeline: Pipeline, tmp_path: Path) -> None:
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


def test_evaluate_says_when_a_source_is_unknown(pipeline: Pipeline) -> None:
    result = pipeline.run("evaluate", "--source", "no-such-source", check=False)
    assert result.returncode == 1
    assert "unknown source 'no-such-source'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
