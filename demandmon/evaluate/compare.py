"""One source against a baseline (e.g. November 2023 against November 2022): the headline,
the figures every output format carries, and what was saved. Pure: reports in, dicts out.

A figure row is ``{"figure", "label", "unit", "baseline", "subject", "change",
"percent_change"}``: ``unit`` is ``count``, ``hours`` or ``rate`` (a fraction of 1, shown to
people as a percentage, whose change is in percentage points); ``change`` is subject minus
baseline in that unit; ``percent_change`` is the change relative to the baseline (None for
rates, and when the baseline is 0). Without a baseline, ``baseline``, ``change`` and
``percent_change`` are None."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from schemas.vocabulary import ATTENDANCE_TARGET_S

Report = dict[str, Any]
Row = dict[str, Any]
MINUS = "\u2212"  # the headline's minus sign, as the briefing prints it


def _per(hours: float, count: int) -> float | None:
    return round(hours / count, 1) if count else None


def _attendance_rate(grade: str) -> Callable[[Report], float]:
    return lambda r: float(r["attendance"][grade]["rate"])


# (figure, label, unit, how to read it from a report)
FIGURES: tuple[tuple[str, str, str, Callable[[Report], float | None]], ...] = (
    ("officer_hours", "officer hours, RCRP incidents", "hours", lambda r: r["officer_hours"]),
    (
        "officer_hours_per_deployment",
        "officer hours per RCRP deployment",
        "hours",
        lambda r: _per(r["officer_hours"], r["total"]["deployed"]),
    ),
    ("igrade_incidents", "I-grade incidents", "count", lambda r: r["igrade_incidents"]),
    ("open_incidents", "open incidents at the end", "count", lambda r: r["open_incidents"]),
    *(
        (
            f"attended_within_target_{grade}",
            f"{grade}-grade attended within {target_s // 60} min",
            "rate",
            _attendance_rate(grade),
        )
        for grade, target_s in ATTENDANCE_TARGET_S.items()
    ),
    ("s136_detentions", "s136 detentions", "count", lambda r: r["s136"]["detentions"]),
    (
        "s136_detention_hours",
        "s136 detention hours (detained to handover)",
        "hours",
        lambda r: r["s136"]["detention_hours"],
    ),
    (
        "s136_officer_hours",
        "s136 officer hours (officers x time)",
        "hours",
        lambda r: r["s136"]["officer_hours"],
    ),
    (
        "s136_officer_hours_per_detention",
        "s136 officer hours per detention",
        "hours",
        lambda r: r["s136"]["officer_hours_per_detention"],
    ),
)


def _round(value: float, unit: str) -> float:
    """Figures are kept as people are shown them: counts whole, hours to 0.1 h, rates to
    0.1% (3 places of a fraction)."""
    return round(value, {"count": 0, "hours": 1, "rate": 3}[unit])


def _change(new: float, old: float) -> float | None:
    return round((new - old) / old, 3) if old else None


def figure_rows(subject: Report, baseline: Report | None) -> list[Row]:
    rows = []
    for key, label, unit, read in FIGURES:
        new, old = read(subject), read(baseline) if baseline is not None else None
        change = percent = None
        if new is not None and old is not None:
            change = _round(new - old, unit)
            percent = None if unit == "rate" else _change(new, old)
        rows.append(
            {
                "figure": key,
                "label": label,
                "unit": unit,
                "baseline": old,
                "subject": new,
                "change": change,
                "percent_change": percent,
            }
        )
    return rows


def _points(rate_change: float) -> str:
    points = round(rate_change * 100, 1)
    sign = MINUS if points < 0 else "+" if points > 0 else ""
    return f"{sign}{abs(points):.1f} points"


def headline(subject: Report, baseline: Report | None) -> str:
    """ "RCRP deployment rate 39.9% → 26.2% (−13.7 points)"; one source: its rate and
    counts. The points are those of the rates as shown (rounded to 0.1%)."""
    new = subject["total"]
    if baseline is None:
        return (
            f"RCRP deployment rate {new['deployment_rate'] * 100:.1f}% "
            f"({new['deployed']:,} of {new['incidents']:,} RCRP incidents deployed to)"
        )
    old = baseline["total"]
    return (
        f"RCRP deployment rate {old['deployment_rate'] * 100:.1f}% \u2192 "
        f"{new['deployment_rate'] * 100:.1f}% "
        f"({_points(new['deployment_rate'] - old['deployment_rate'])})"
    )


def saved(change: dict[str, Any]) -> list[tuple[str, str, str, float]]:
    """What the subject saved against the baseline: (key, label, unit, value)."""
    return [
        ("deployments_avoided", "deployments avoided", "count", change["deployments_avoided"]),
        ("officer_hours_saved", "officer hours saved", "hours", change["officer_hours_saved"]),
        (
            "s136_detentions_avoided",
            "s136 detentions avoided",
            "count",
            -change["s136_detentions_change"],
        ),
        (
            "s136_detention_hours_saved",
            "s136 detention hours saved",
            "hours",
            change["s136_detention_hours_saved"],
        ),
        (
            "s136_officer_hours_saved",
            "s136 officer hours saved",
            "hours",
            change["s136_officer_hours_saved"],
        ),
    ]


def comparison(subject: Report, baseline: Report) -> dict[str, Any]:
    """Subject against baseline: the keys analysts' scripts read (kept), the headline, and
    every figure row (``figure_rows``) the four output formats carry."""
    avoided = baseline["total"]["deployed"] - subject["total"]["deployed"]
    base_deployed = baseline["total"]["deployed"]
    return {
        "headline": headline(subject, baseline),
        "incidents_change": _change(subject["total"]["incidents"], baseline["total"]["incidents"]),
        # A fraction of 1 (-0.137 is 13.7 percentage points), as the rates are.
        "deployment_rate_change_points": round(
            subject["total"]["deployment_rate"] - baseline["total"]["deployment_rate"], 3
        ),
        "deployments_avoided": avoided,
        "officer_hours_saved": round(baseline["officer_hours"] - subject["officer_hours"], 1),
        "officer_hours_per_deployment": (
            round(baseline["officer_hours"] / base_deployed, 2) if base_deployed else None
        ),
        "igrade_change": _change(subject["igrade_incidents"], baseline["igrade_incidents"]),
        "open_incidents_change": _change(subject["open_incidents"], baseline["open_incidents"]),
        "s136_detentions_change": subject["s136"]["detentions"] - baseline["s136"]["detentions"],
        "s136_officer_hours_saved": round(
            baseline["s136"]["officer_hours"] - subject["s136"]["officer_hours"], 1
        ),
        "s136_detention_hours_saved": round(
            baseline["s136"]["detention_hours"] - subject["s136"]["detention_hours"], 1
        ),
        "figures": figure_rows(subject, baseline),
    }
