"""Prometheus names shared by the rule, Alertmanager and dashboard generators: scrape
jobs, recording rules, alerts, and the RCRP category matcher.

Kept in one place so an alert renamed here is renamed in its runbook link, its
inhibit rules and the dashboards at once; tests check the runbook follows. BCUs and
categories themselves are the vocabulary's (``schemas.vocabulary``).
"""

from __future__ import annotations

from typing import Final

from schemas.vocabulary import (
    ATTENDANCE_TARGET_S,
    I_GRADE,
    RCRP_CATEGORIES,
    S136_HANDOVER_TARGET_S,
    S_GRADE,
)

# Only the five RCRP categories (`not_rcrp` is deliberately absent from the vocabulary's
# RCRP_CATEGORIES), so no rate or total built from this matcher can ever include it.
RCRP_CATEGORY_MATCHER: Final[str] = 'category=~"' + "|".join(RCRP_CATEGORIES) + '"'

# The vocabulary's targets, in minutes, as alert and panel texts say them.
I_TARGET_MIN: Final[int] = ATTENDANCE_TARGET_S[I_GRADE] // 60
S_TARGET_MIN: Final[int] = ATTENDANCE_TARGET_S[S_GRADE] // 60
S136_TARGET_MIN: Final[int] = S136_HANDOVER_TARGET_S // 60

# Prometheus scrape jobs, as deploy/stack and docker-compose name them.
JOB_WORKER: Final[str] = "demandmon-worker"
JOB_EXPORTER: Final[str] = "demandmon-exporter"

# Recording rules (level:metric:operations). Per-BCU series carry source and bcu;
# London series carry source only and are built from sums, never from ratios.
# The RCRP deployment rate has one set per exporter window (docs/metrics.md).
RATE_WINDOWS: Final[tuple[str, ...]] = ("1h", "24h", "7d", "28d")


def rcrp_incidents(level: str, window: str) -> str:
    return f"{level}:demand_rcrp_incidents:sum{window}"


def rcrp_deployed(level: str, window: str) -> str:
    return f"{level}:demand_rcrp_deployed_incidents:sum{window}"


def rcrp_rate(level: str, window: str) -> str:
    return f"{level}:demand_rcrp_deployment_rate:ratio{window}"


BCU_RCRP_INCIDENTS: Final[str] = rcrp_incidents("bcu", "24h")
BCU_RCRP_DEPLOYED: Final[str] = rcrp_deployed("bcu", "24h")
BCU_RCRP_RATE: Final[str] = rcrp_rate("bcu", "24h")
LONDON_RCRP_INCIDENTS: Final[str] = rcrp_incidents("london", "24h")
LONDON_RCRP_DEPLOYED: Final[str] = rcrp_deployed("london", "24h")
LONDON_RCRP_RATE: Final[str] = rcrp_rate("london", "24h")
BCU_GRADED: Final[str] = "bcu:demand_graded_incidents:sum24h"
BCU_ATTENDED: Final[str] = "bcu:demand_attended_within_target_incidents:sum24h"
BCU_ATTENDED_RATIO: Final[str] = "bcu:demand_attended_within_target:ratio24h"
LONDON_GRADED: Final[str] = "london:demand_graded_incidents:sum24h"
LONDON_ATTENDED: Final[str] = "london:demand_attended_within_target_incidents:sum24h"
LONDON_ATTENDED_RATIO: Final[str] = "london:demand_attended_within_target:ratio24h"

# Exporter metrics the generators read by name more than once (docs/metrics.md).
OLDEST_UNATTENDED_IGRADE: Final[str] = "demand_oldest_unattended_igrade_age_seconds"
OLDEST_ATTENDED_IGRADE: Final[str] = "demand_oldest_attended_open_igrade_age_seconds"
S136_LAST_LONG_WAIT: Final[str] = "demand_s136_last_long_wait_handover_timestamp_seconds"
WINDOW_END: Final[str] = "demand_stream_window_end_timestamp_seconds"
# Expected demand (demandmon/baseline; docs/semantics.md "Expected demand").
EXPECTED_INCIDENTS: Final[str] = "demand_expected_incidents"
EXPECTED_UPPER: Final[str] = "demand_expected_incidents_upper"
EXPECTED_SCORE: Final[str] = "demand_expected_score"
EXPECTED_BASIS: Final[str] = "demand_expected_basis"
RECENT_INCIDENTS: Final[str] = "demand_recent_incidents"
ALL_INCIDENTS_MEASURE: Final[str] = 'measure="incidents"'  # every incident, any category

# Alert names. Per-BCU alerts carry `bcu` and `source` labels; Alertmanager inhibits
# them (matched by the presence of `bcu`) while the feed or the worker is down.
ALERT_RCRP_RATE: Final[str] = "DemandRcrpDeploymentRateHigh"
ALERT_IGRADE_OPEN: Final[str] = "DemandIGradeOpenListHigh"
ALERT_IGRADE_OLDEST: Final[str] = "DemandIGradeOldestOpenPastTarget"
ALERT_IGRADE_ATTENDED: Final[str] = "DemandIGradeAttendedWithinTargetLow"
ALERT_SGRADE_ATTENDED: Final[str] = "DemandSGradeAttendedWithinTargetLow"
ALERT_S136_HANDOVER: Final[str] = "DemandS136HandoverOver60Minutes"
ALERT_ABOVE_EXPECTED: Final[str] = "DemandAboveExpected"
ALERT_FEED_STALE: Final[str] = "DemandLiveFeedStale"
ALERT_DEAD_LETTER: Final[str] = "DemandDeadLetterRejectionsRising"
ALERT_WORKER_DOWN: Final[str] = "DemandmonWorkerDown"
ALERT_EXPORTER_DOWN: Final[str] = "DemandmonExporterDown"
ALERT_PARTITION_STALLED: Final[str] = "DemandmonPartitionStalled"
ALERT_DEAD_LETTER_LOST: Final[str] = "DemandmonDeadLetterLost"
ALERT_REDIS_ROLLED_BACK: Final[str] = "DemandmonRedisRolledBack"
