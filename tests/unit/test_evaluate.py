"""Evaluation reports from figures: keys of the contract, rounding, the comparison and its
headline. Expected values are worked out by hand from the round figures of
tests/unit/evaluate_figures.py (the real pipeline meets the oracle in
tests/integration/test_evaluate_e2e.py)."""

from __future__ import annotations

from demandmon.evaluate.compare import comparison, figure_rows, headline
from demandmon.evaluate.report import build_report
from tests.unit.evaluate_figures import (
    EXTRA_2022,
    EXTRA_2023,
    ROWS_2022,
    ROWS_2023,
    Extra,
    figures,
)

BRIEF_2023 = {
    "concern_for_safety": (3126, 919),
    "mental_health": (2374, 294),
    "vulnerable": (1110, 522),
    "collapse_illness_injury_trapped": (505, 93),
    "welfare_check_partner": (29, 12),
}
# The event contract's `evaluate --format json` keys: these must stay.
CONTRACT_KEYS = {
    "source": None,
    "period": {"from", "to"},
    "categories": None,
    "total": {"incidents", "deployed", "deployment_rate"},
    "by_bcu": None,
    "igrade_incidents": None,
    "s136": {"detentions", "handovers_over_60_min", "officer_hours"},
    "officer_hours": None,
    "events": {"applied", "duplicates", "rejected"},
}


def _pair() -> tuple[dict[str, object], dict[str, object]]:
    return (
        build_report(figures("nov-2023", ROWS_2023, EXTRA_2023)),
        build_report(figures("nov-2022", ROWS_2022, EXTRA_2022)),
    )


def test_report_keeps_the_contract_keys() -> None:
    report = build_report(figures("nov-2023", BRIEF_2023))
    for key, inner in CONTRACT_KEYS.items():
        assert key in report, key
        if inner is not None:
            assert inner <= set(report[key]), key
    assert set(report["events"]["rejected"]) == {"invalid", "too_late"}


def test_report_has_the_briefing_rounding() -> None:
    report = build_report(figures("nov-2023", BRIEF_2023, Extra(officer_ms=7_200_000)))
    assert report["period"] == {"from": "2023-11-01T00:00:00Z", "to": "2023-11-29T00:00:00Z"}
    assert report["total"] == {"incidents": 7144, "deployed": 1840, "deployment_rate": 0.258}
    assert report["categories"][0] == {
        "category": "concern_for_safety",
        "label": "Concern for Safety",
        "incidents": 3126,
        "deployed": 919,
        "deployment_rate": 0.294,
    }
    assert [c["category"] for c in report["categories"]][-1] == "welfare_check_partner"
    assert {"bcu": "AW", "incidents": 3571, "deployed": 0} in report["by_bcu"]
    assert report["igrade_incidents"] == 40
    assert report["officer_hours"] == 2.0  # RCRP categories only
    assert report["events"]["rejected"] == {"invalid": 1, "too_late": 4}


def test_report_has_attendance_open_and_both_s136_hours() -> None:
    report = build_report(figures("nov-2022", ROWS_2022, EXTRA_2022))
    assert report["open_incidents"] == 400  # every grade, unknown included
    assert report["attendance"] == {
        "I": {"target_minutes": 15, "incidents": 50_000, "within_target": 45_000, "rate": 0.9},
        "S": {"target_minutes": 60, "incidents": 40_000, "within_target": 30_000, "rate": 0.75},
    }
    # officer hours: officers x unit time (s136_officer_ms); detention: detained->handover
    assert report["s136"] == {
        "detentions": 800,
        "handovers_over_60_min": 1,
        "officer_hours": 17_600.0,
        "detention_hours": 6_400.0,
        "officer_hours_per_detention": 22.0,
    }


def test_s136_officer_hours_are_zero_without_the_counter() -> None:
    s136 = build_report(figures("old", {}, Extra(detentions=0)))["s136"]
    assert s136["officer_hours"] == 0.0 and s136["officer_hours_per_detention"] is None


def test_empty_source_has_zero_rates() -> None:
    report = build_report(figures("empty", {}))
    assert report["total"]["deployment_rate"] == 0
    assert all(c["deployment_rate"] == 0 for c in report["categories"])
    assert report["attendance"]["S"]["rate"] == 0


def test_headline_is_the_briefing_s() -> None:
    new, old = _pair()
    assert headline(new, old) == "RCRP deployment rate 39.9% \u2192 26.2% (\u221213.7 points)"
    assert headline(old, new) == "RCRP deployment rate 26.2% \u2192 39.9% (+13.7 points)"
    assert headline(new, new) == "RCRP deployment rate 26.2% \u2192 26.2% (0.0 points)"
    assert headline(new, None) == (
        "RCRP deployment rate 26.2% (7,310 of 27,872 RCRP incidents deployed to)"
    )


def test_comparison_keeps_its_keys_and_adds_the_new_figures() -> None:
    new, old = _pair()
    change = comparison(new, old)
    assert change["headline"] == headline(new, old)
    assert change["incidents_change"] == -0.165
    assert change["deployment_rate_change_points"] == -0.137
    assert change["deployments_avoided"] == 5995
    assert change["officer_hours_saved"] == 35_000.0
    assert change["officer_hours_per_deployment"] == 5.79  # 77,000 / 13,305
    assert change["igrade_change"] == -0.186
    assert change["open_incidents_change"] == -0.2
    assert change["s136_detentions_change"] == -200
    assert change["s136_officer_hours_saved"] == 6_200.0
    assert change["s136_detention_hours_saved"] == 2_500.0
    by_key = {row["figure"]: row for row in change["figures"]}
    assert list(by_key) == [
        "officer_hours",
        "officer_hours_per_deployment",
        "igrade_incidents",
        "open_incidents",
        "attended_within_target_I",
        "attended_within_target_S",
        "s136_detentions",
        "s136_detention_hours",
        "s136_officer_hours",
        "s136_officer_hours_per_detention",
    ]
    assert by_key["igrade_incidents"] == {
        "figure": "igrade_incidents",
        "label": "I-grade incidents",
        "unit": "count",
        "baseline": 50_000,
        "subject": 40_700,
        "change": -9_300,
        "percent_change": -0.186,
    }
    i_row = by_key["attended_within_target_I"]
    assert (i_row["baseline"], i_row["subject"], i_row["change"]) == (0.9, 0.92, 0.02)
    assert i_row["percent_change"] is None  # rates change in points only
    s_row = by_key["attended_within_target_S"]
    assert (s_row["baseline"], s_row["subject"], s_row["change"]) == (0.75, 0.8, 0.05)
    assert by_key["officer_hours_per_deployment"]["subject"] == 5.7  # 42,000 / 7,310
    s136 = by_key["s136_officer_hours"]
    assert (s136["baseline"], s136["subject"], s136["change"]) == (17_600.0, 11_400.0, -6_200.0)
    assert by_key["s136_officer_hours_per_detention"]["subject"] == 19.0


def test_figure_rows_without_a_baseline_have_no_change() -> None:
    new, _ = _pair()
    rows = figure_rows(new, None)
    assert all(r["baseline"] is None and r["change"] is None for r in rows)
    assert {r["figure"]: r["subject"] for r in rows}["open_incidents"] == 320
