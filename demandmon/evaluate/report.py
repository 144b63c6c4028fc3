"""An evaluation report from a source's whole-stream totals, read through the record's
one decoder (``record.Counts``, ``record.EventCounts``). Pure: figures in, dict out, with
the keys of the event contract's `evaluate --format json` (and more, added beside them).
Times are kept in ms and reported to people in hours."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from demandmon.state.reader import SourceFigures
from demandmon.state.record import MS_PER_HOUR, CounterName, Counts, EventCounts
from schemas.vocabulary import (
    ATTENDANCE_TARGET_S,
    BCU_CODES,
    GRADES_WITH_UNKNOWN,
    I_GRADE,
    RCRP_CATEGORIES,
    RCRP_LABELS,
    REJECT_REASONS,
    TOO_LATE,
)

# Everything refused except lateness counts as invalid in the contract's JSON.
INVALID_REASONS = tuple(r for r in REJECT_REASONS if r != TOO_LATE)
DAY_S = 86400


def rate(deployed: int, incidents: int) -> float:
    return round(deployed / incidents, 3) if incidents else 0.0


def hours(ms: int) -> float:
    return round(ms / MS_PER_HOUR, 1)


def _day_iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def period(fig: SourceFigures) -> dict[str, str | None]:
    """Whole days from the first to the last incident creation (end exclusive)."""
    if fig.first_created_s is None or fig.last_created_s is None:
        return {"from": None, "to": None}
    start = int(fig.first_created_s // DAY_S) * DAY_S
    end = (int(fig.last_created_s // DAY_S) + 1) * DAY_S
    return {"from": _day_iso(start), "to": _day_iso(end)}


def build_report(fig: SourceFigures) -> dict[str, Any]:
    totals = Counts(fig.windows.get("all", Counter()))

    def total(counter: CounterName, *labels: str) -> int:
        return sum(totals.get(counter, bcu, *labels) for bcu in BCU_CODES)

    categories: list[dict[str, Any]] = []
    for cat in RCRP_CATEGORIES:
        incidents, deployed = total("incidents", cat), total("deployed", cat)
        categories.append(
            {
                "category": cat,
                "label": RCRP_LABELS[cat],
                "incidents": incidents,
                "deployed": deployed,
                "deployment_rate": rate(deployed, incidents),
            }
        )
    all_incidents = sum(int(c["incidents"]) for c in categories)
    all_deployed = sum(int(c["deployed"]) for c in categories)
    by_bcu = [
        {
            "bcu": bcu,
            "incidents": sum(totals.get("incidents", bcu, c) for c in RCRP_CATEGORIES),
            "deployed": sum(totals.get("deployed", bcu, c) for c in RCRP_CATEGORIES),
        }
        for bcu in BCU_CODES
    ]
    officer_ms = sum(total("officer_ms", cat) for cat in RCRP_CATEGORIES)
    events = EventCounts.decode(fig.meta)
    gauges = Counts(fig.now)
    attendance: dict[str, dict[str, Any]] = {}
    for grade, target_s in ATTENDANCE_TARGET_S.items():
        graded, within = total("graded", grade), total("attended_within_target", grade)
        attendance[grade] = {
            "target_minutes": target_s // 60,
            "incidents": graded,
            "within_target": within,
            "rate": rate(within, graded),
        }
    detentions = total("s136_detentions")
    # s136 officer hours: every unit's officers x (cleared - assigned) on incidents with a
    # detention (the contract's meaning); detention hours: detained -> handover, apart.
    s136_officer_ms = total("s136_officer_ms")
    return {
        "source": fig.source,
        "period": period(fig),
        "categories": categories,
        "total": {
            "incidents": all_incidents,
            "deployed": all_deployed,
            "deployment_rate": rate(all_deployed, all_incidents),
        },
        "by_bcu": by_bcu,
        "igrade_incidents": total("graded", I_GRADE),
        "open_incidents": sum(
            gauges.get("open", bcu, grade) for bcu in BCU_CODES for grade in GRADES_WITH_UNKNOWN
        ),
        "attendance": attendance,
        "s136": {
            "detentions": detentions,
            "handovers_over_60_min": total("s136_handovers_over_target"),
            "officer_hours": hours(s136_officer_ms),
            "detention_hours": hours(total("s136_detention_ms")),
            "officer_hours_per_detention": (
                round(s136_officer_ms / MS_PER_HOUR / detentions, 1) if detentions else None
            ),
        },
        "officer_hours": hours(officer_ms),
        "events": {
            "applied": events.applied,
            "duplicates": events.duplicate,
            "rejected": {
                "invalid": sum(events.rejected.get(r, 0) for r in INVALID_REASONS),
                TOO_LATE: events.rejected.get(TOO_LATE, 0),
            },
            "orphaned_incidents": events.orphaned,
        },
        "watermark": _day_iso(fig.watermark_s) if fig.watermark_s is not None else None,
    }
