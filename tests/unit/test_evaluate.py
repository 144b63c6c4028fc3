"""Evaluation reports from figures: keys of the contract, rounding, comparison, rendering."""

from __future__ import annotations

import json
from collections import Counter

from demandmon.evaluate.render import RENDERERS
from demandmon.evaluate.report import build_report, comparison
from demandmon.state.reader import SourceFigures


def _figures(source: str, rows: dict[str, tuple[int, int]], oh_ms: int = 0) -> SourceFigures:
    totals: Counter[str] = Counter()
    for cat, (incidents, deployed) in rows.items():
        # Spread over two BCUs to check the sums.
        totals[f"i|SE|{cat}"] += incidents - incidents // 2
        totals[f"i|AW|{cat}"] += incidents // 2
        totals[f"d|SE|{cat}"] += deployed
    totals["i|SE|not_rcrp"] = 1000  # never part of the RCRP table
    totals["d|SE|not_rcrp"] = 900
    totals["oh|SE|mental_health"] = oh_ms
    totals["g|SE|I"] = 40
    totals["s|AW"] = 3
    totals["sb|AW"] = 1
    totals["so|AW"] = 3 * 3_600_000
    fig = SourceFigures(source, 1701215999.0, 1701215999.0, None, windows={"all": totals})
    fig.meta.update({"applied": 10, "duplicate": 2, "rej:malformed_json": 1, "rej:too_late": 4})
    fig.first_created_s = 1698796800.0  # 2023-11-01T00:00Z
    fig.last_created_s = 1701215999.0  # 2023-11-28T23:59:59Z
    return fig


ROWS_2023 = {
    "concern_for_safety": (3126, 919),
    "mental_health": (2374, 294),
    "vulnerable": (1110, 522),
    "collapse_illness_injury_trapped": (505, 93),
    "welfare_check_partner": (29, 12),
}


def test_report_has_the_contract_keys_and_briefing_rounding() -> None:
    report = build_report(_figures("nov-2023", ROWS_2023, oh_ms=7200_000))
    assert report["period"] == {"from": "2023-11-01T00:00:00Z", "to": "2023-11-29T00:00:00Z"}
    assert report["total"] == {"incidents": 7144, "deployed": 1840, "deployment_rate": 0.258}
    cfs = report["categories"][0]
    assert cfs == {
        "category": "concern_for_safety",
        "label": "Concern for Safety",
        "incidents": 3126,
        "deployed": 919,
        "deployment_rate": 0.294,
    }
    assert [c["category"] for c in report["categories"]][-1] == "welfare_check_partner"
    assert {"bcu": "AW", "incidents": 3571, "deployed": 0} in report["by_bcu"]
    assert report["igrade_incidents"] == 40
    assert report["s136"] == {"detentions": 3, "handovers_over_60_min": 1, "officer_hours": 3.0}
    assert report["officer_hours"] == 2.0
    assert report["events"]["rejected"] == {"invalid": 1, "too_late": 4}


def test_empty_source_has_zero_rates() -> None:
    report = build_report(_figures("empty", {}))
    assert report["total"]["deployment_rate"] == 0
    assert all(c["deployment_rate"] == 0 for c in report["categories"])


def test_comparison_and_every_format() -> None:
    old = build_report(_figures("nov-2022", {"mental_health": (100, 50)}, oh_ms=50 * 5_700 * 3600))
    new = build_report(_figures("nov-2023", {"mental_health": (80, 20)}, oh_ms=20 * 5_700 * 3600))
    change = comparison(new, old)
    assert change["deployments_avoided"] == 30
    assert change["incidents_change"] == -0.2
    assert change["officer_hours_per_deployment"] == 5.7
    assert change["officer_hours_saved"] == 171.0
    table = RENDERERS["table"](new, old, change)
    assert "Mental Health" in table and "25.0%" in table and "50.0%" in table
    doc = json.loads(RENDERERS["json"](new, old, change))
    assert doc["against"]["source"] == "nov-2022" and doc["comparison"] == change
    assert "nov-2023,mental_health,80,20,0.25" in RENDERERS["csv"](new, old, change)
    assert "| Mental Health |" in RENDERERS["markdown"](new, old, change)
