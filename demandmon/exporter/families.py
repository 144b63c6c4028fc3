"""Figures read from Redis -> Prometheus samples, through the record's one decoder
(``record.Counts``, ``record.EventCounts``). Pure, so tests compare it directly with
the oracle. Every allow-listed label combination is emitted, zero included, so series
never appear and vanish and cardinality is fixed: per source, about 3,200 series
(expected demand: 769 of them)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from demandmon.baseline.expected import BAND_SIGMAS, SERIES, Baseline, Expectation
from demandmon.state.reader import SourceFigures
from demandmon.state.record import CounterName, Counts, EventCounts
from schemas.vocabulary import (
    ATTENDANCE_TARGET_S,
    BCU_CODES,
    CATEGORIES,
    GRADES_WITH_UNKNOWN,
    I_GRADE,
    REJECT_REASONS,
    S136_HANDOVER_TARGET_S,
    S_GRADE,
    TARGET_GRADES,
)

BASELINE_NAMES: Final = ("demand_expected_", "demand_recent_")
# period label: the 60 minutes up to the window end, the 24 hours after it
LAST_HOUR: Final = "60m"
NEXT_DAY: Final = "next_24h"


def _minutes(grade: str) -> int:
    return ATTENDANCE_TARGET_S[grade] // 60


@dataclass(frozen=True)
class Sample:
    name: str
    labels: tuple[tuple[str, str], ...]
    value: float


# metric name -> (help, kind) ; kind is "gauge" or "counter"
HELP: Final[dict[str, tuple[str, str]]] = {
    "demand_rcrp_incidents": ("Incidents created in the window by latest category", "gauge"),
    "demand_rcrp_deployed_incidents": ("Of those, incidents with a resource assigned", "gauge"),
    "demand_igrade_incidents": ("Incidents created in the window whose latest grade is I", "gauge"),
    "demand_graded_incidents": ("Incidents created in the window by latest grade", "gauge"),
    "demand_attended_within_target_incidents": (
        f"{I_GRADE} incidents first attended within {_minutes(I_GRADE)} min, "
        f"{S_GRADE} within {_minutes(S_GRADE)} min",
        "gauge",
    ),
    "demand_s136_detentions": ("s136 detentions on incidents created in the window", "gauge"),
    "demand_s136_handovers": ("s136 detentions handed over, wait known", "gauge"),
    "demand_s136_long_wait_handovers": (
        f"Handovers whose wait was over {S136_HANDOVER_TARGET_S // 60} min",
        "gauge",
    ),
    "demand_s136_handover_wait_seconds": ("Sum of handover waits", "gauge"),
    "demand_s136_detention_seconds": ("s136 detention time, detained to handover", "gauge"),
    "demand_s136_officer_time_seconds": (
        "Officer time on incidents with an s136 detention: each resource assigned to "
        "cleared, times officers",
        "gauge",
    ),
    "demand_officer_time_seconds": ("Resource time assigned to cleared, times officers", "gauge"),
    "demand_open_incidents": ("Incidents created and neither closed nor cancelled", "gauge"),
    "demand_open_incidents_past_target": (
        "Open, not attended, older than the grade's target at the window end",
        "gauge",
    ),
    "demand_oldest_unattended_igrade_age_seconds": (
        "Age of the oldest open I incident not yet attended",
        "gauge",
    ),
    "demand_oldest_attended_open_igrade_age_seconds": (
        "Age of the oldest I incident attended and not closed",
        "gauge",
    ),
    "demand_s136_last_long_wait_handover_timestamp_seconds": (
        f"Event time of the latest s136 handover whose wait was over "
        f"{S136_HANDOVER_TARGET_S // 60} min",
        "gauge",
    ),
    "demand_s136_in_custody": ("s136 detentions not yet handed over", "gauge"),
    "demand_stream_watermark_timestamp_seconds": ("Latest event time seen", "gauge"),
    "demand_stream_window_end_timestamp_seconds": ("Where the source's windows end", "gauge"),
    "demand_stream_last_processed_timestamp_seconds": ("Wall time of the last batch", "gauge"),
    "demand_events_applied": ("Events that changed state", "counter"),
    "demand_events_duplicate": ("Repeated event ids, ignored", "counter"),
    "demand_events_rejected": ("Events sent to the dead-letter topic", "counter"),
    "demand_incidents_orphaned": ("Incidents whose created never arrived", "counter"),
    # Expected demand (demandmon/baseline): after every other family.
    "demand_expected_incidents": (
        "Expected count: mean of the same hours of the week over the previous weeks",
        "gauge",
    ),
    "demand_expected_incidents_lower": (
        f"Expected count minus {BAND_SIGMAS:g} sigma, floored at 0",
        "gauge",
    ),
    "demand_expected_incidents_upper": (f"Expected count plus {BAND_SIGMAS:g} sigma", "gauge"),
    "demand_recent_incidents": ("Count in the hour up to the window end", "gauge"),
    "demand_expected_score": (
        "Sigmas the last hour is above expected: (recent - expected) / sigma",
        "gauge",
    ),
    "demand_expected_basis": ("Previous weeks the expected counts are the mean of", "gauge"),
}
BASELINE_METRICS: Final = frozenset(name for name in HELP if name.startswith(BASELINE_NAMES))

# Counter (record.BUCKET_COUNTERS) -> (metric, scale): kept per BCU, or per BCU and category.
PER_BCU: Final[dict[CounterName, tuple[str, float]]] = {
    "s136_detentions": ("demand_s136_detentions", 1.0),
    "s136_handovers": ("demand_s136_handovers", 1.0),
    "s136_handovers_over_target": ("demand_s136_long_wait_handovers", 1.0),
    "s136_handover_wait_ms": ("demand_s136_handover_wait_seconds", 1 / 1000),
    "s136_detention_ms": ("demand_s136_detention_seconds", 1 / 1000),
    "s136_officer_ms": ("demand_s136_officer_time_seconds", 1 / 1000),
}
PER_CATEGORY: Final[dict[CounterName, tuple[str, float]]] = {
    "incidents": ("demand_rcrp_incidents", 1.0),
    "deployed": ("demand_rcrp_deployed_incidents", 1.0),
    "officer_ms": ("demand_officer_time_seconds", 1 / 1000),
}


def _labels(**pairs: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(pairs.items()))


def window_samples(source: str, window: str, counts: Counts) -> Iterator[Sample]:
    for bcu in BCU_CODES:
        for counter, (name, scale) in PER_CATEGORY.items():
            for cat in CATEGORIES:
                value = counts.get(counter, bcu, cat) * scale
                yield Sample(
                    name, _labels(source=source, bcu=bcu, category=cat, window=window), value
                )
        for grade in GRADES_WITH_UNKNOWN:
            value = float(counts.get("graded", bcu, grade))
            labels = _labels(source=source, bcu=bcu, grade=grade, window=window)
            yield Sample("demand_graded_incidents", labels, value)
        for grade in TARGET_GRADES:
            value = float(counts.get("attended_within_target", bcu, grade))
            labels = _labels(source=source, bcu=bcu, grade=grade, window=window)
            yield Sample("demand_attended_within_target_incidents", labels, value)
        bcu_labels = _labels(source=source, bcu=bcu, window=window)
        igrade = float(counts.get("graded", bcu, I_GRADE))
        yield Sample("demand_igrade_incidents", bcu_labels, igrade)
        for counter, (name, scale) in PER_BCU.items():
            yield Sample(name, bcu_labels, counts.get(counter, bcu) * scale)


def source_samples(fig: SourceFigures) -> Iterator[Sample]:
    yield from windows_samples(fig)
    yield from state_samples(fig)


def windows_samples(fig: SourceFigures) -> Iterator[Sample]:
    """The samples that follow the windows' counters alone."""
    for window, fields in fig.windows.items():
        yield from window_samples(fig.source, window, Counts(fields))


def state_samples(fig: SourceFigures) -> Iterator[Sample]:
    """The rest: gauges, open lists at the window end, stream times, event counters."""
    src = fig.source
    now = Counts(fig.now)
    for bcu in BCU_CODES:
        for grade in GRADES_WITH_UNKNOWN:
            labels = _labels(source=src, bcu=bcu, grade=grade)
            yield Sample("demand_open_incidents", labels, float(now.get("open", bcu, grade)))
        for grade in TARGET_GRADES:
            labels = _labels(source=src, bcu=bcu, grade=grade)
            value = float(fig.past_target.get(f"{bcu}|{grade}", 0))
            yield Sample("demand_open_incidents_past_target", labels, value)
        bcu_labels = _labels(source=src, bcu=bcu)
        for name, oldest in (
            ("demand_oldest_unattended_igrade_age_seconds", fig.oldest_unattended_i_created_s),
            ("demand_oldest_attended_open_igrade_age_seconds", fig.oldest_attended_i_created_s),
        ):
            created = oldest.get(bcu)
            age = max(0.0, fig.window_end_s - created) if created is not None else 0.0
            yield Sample(name, bcu_labels, age)
        custody = float(now.get("in_custody", bcu))
        yield Sample("demand_s136_in_custody", bcu_labels, custody)
        handover = fig.last_long_wait_handover_s.get(bcu, 0.0)  # 0: none kept
        yield Sample("demand_s136_last_long_wait_handover_timestamp_seconds", bcu_labels, handover)
    only_source = _labels(source=src)
    if fig.watermark_s is not None:
        yield Sample("demand_stream_watermark_timestamp_seconds", only_source, fig.watermark_s)
    yield Sample("demand_stream_window_end_timestamp_seconds", only_source, fig.window_end_s)
    if fig.last_processed_s is not None:
        last = fig.last_processed_s
        yield Sample("demand_stream_last_processed_timestamp_seconds", only_source, last)
    events = EventCounts.decode(fig.meta)
    yield Sample("demand_events_applied", only_source, float(events.applied))
    yield Sample("demand_events_duplicate", only_source, float(events.duplicate))
    yield Sample("demand_incidents_orphaned", only_source, float(events.orphaned))
    for reason in REJECT_REASONS:
        labels = _labels(source=src, reason=reason)
        value = float(events.rejected.get(reason, 0))
        yield Sample("demand_events_rejected", labels, value)


def baseline_samples(source: str, base: Baseline) -> Iterator[Sample]:
    """Expected demand: every (BCU, measure) of ``SERIES``, both periods."""
    periods: tuple[tuple[str, Expectation], ...] = (
        (LAST_HOUR, base.last_hour),
        (NEXT_DAY, base.next_day),
    )
    for period, exp in periods:
        parts = (
            ("demand_expected_incidents", exp.mean),
            ("demand_expected_incidents_lower", exp.lower),
            ("demand_expected_incidents_upper", exp.upper),
        )
        for name, values in parts:
            for (bcu, measure), value in zip(SERIES, values.tolist(), strict=True):
                labels = _labels(source=source, bcu=bcu, measure=measure, period=period)
                yield Sample(name, labels, value)
    for name, values in (
        ("demand_recent_incidents", base.recent),
        ("demand_expected_score", base.score),
    ):
        for (bcu, measure), value in zip(SERIES, values.tolist(), strict=True):
            yield Sample(name, _labels(source=source, bcu=bcu, measure=measure), value)
    yield Sample("demand_expected_basis", _labels(source=source), float(base.weeks))
