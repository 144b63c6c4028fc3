"""Per-BCU alert rules: one rule per alert, one `or` branch per distinct threshold.

A BCU override becomes its own branch with a `bcu` matcher, and the description picks
the alerting BCU's own threshold with a template `if`, so the text always states the
number it was compared with. (Separate rules with one name would fail promtool's
duplicate-rule lint.) Every expression keeps `source` and `bcu`: the labels
Alertmanager groups and inhibits on.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar

from demandmon.alerting import names as n
from demandmon.alerting.promql import any_of, bcu_groups, by_bcu, duration, number, percent
from demandmon.alerting.promql import selector as sel
from demandmon.alerting.promql import source_matcher as src_matcher
from demandmon.alerting.thresholds import (
    AboveExpected,
    AlertSetting,
    AttendedWithinTarget,
    BcuThresholds,
    IGradeOpenList,
    OldestOpenIGrade,
    RcrpDeploymentRate,
    S136Handover,
    Thresholds,
)
from schemas.vocabulary import I_GRADE

Rule = dict[str, object]
T = TypeVar("T", bound=Hashable)

WHERE = "{{ $labels.bcu }} ({{ $labels.source }}): "


def alert_rule(
    th: Thresholds, name: str, setting: AlertSetting, expr: str, summary: str, description: str
) -> Rule:
    return {
        "alert": name,
        "expr": expr,
        "for": setting.for_,
        "labels": {"severity": setting.severity},
        "annotations": {
            "summary": summary,
            "description": description,
            "runbook_url": th.runbook_url(name),
        },
    }


def per_bcu_rule(
    th: Thresholds,
    name: str,
    setting: AlertSetting,
    pick: Callable[[BcuThresholds], T],
    expr: Callable[[str, T], str],
    summary: str,
    description: tuple[str, Callable[[T], str], str],
) -> Rule:
    """`expr(bcu_matcher, threshold)` per group; description = before + per-BCU + after."""
    groups = bcu_groups(th, pick)
    text = description[0] + by_bcu(groups, description[1]) + description[2]
    joined = any_of([expr(g.matcher, g.value) for g in groups])
    return alert_rule(th, name, setting, joined, summary, WHERE + text)


def rcrp_rate(th: Thresholds) -> Rule:
    src = src_matcher(th.sources.alerts)

    def expr(bcu: str, t: RcrpDeploymentRate) -> str:
        return (
            f"{sel(n.BCU_RCRP_RATE, src, bcu)} > {number(t.max_share)}\n"
            f"and on (source, bcu)\n{n.BCU_RCRP_INCIDENTS} >= {t.min_incidents}"
        )

    def limit(t: RcrpDeploymentRate) -> str:
        return f"{percent(t.max_share)} (alerting from {t.min_incidents} incidents)"

    before = (
        "police were deployed to {{ $value | humanizePercentage }} of RCRP incidents "
        "created in the last 24h, above the target of "
    )
    return per_bcu_rule(
        th,
        n.ALERT_RCRP_RATE,
        th.alerts.rcrp_deployment_rate,
        lambda b: b.rcrp_deployment_rate,
        expr,
        "RCRP deployment rate over target in {{ $labels.bcu }}",
        (before, limit, "."),
    )


def igrade_open_list(th: Thresholds) -> Rule:
    src = src_matcher(th.sources.alerts)

    def expr(bcu: str, t: IGradeOpenList) -> str:
        open_i = sel("demand_open_incidents", 'grade="I"', src, bcu)
        return f"sum by (source, bcu) ({open_i}) > {t.max_open}"

    return per_bcu_rule(
        th,
        n.ALERT_IGRADE_OPEN,
        th.alerts.igrade_open_list,
        lambda b: b.igrade_open_list,
        expr,
        "I-grade open list over its limit in {{ $labels.bcu }}",
        ("{{ $value }} I-grade incidents are open, above the limit of ", _max_open, "."),
    )


def _max_open(t: IGradeOpenList) -> str:
    return str(t.max_open)


def igrade_oldest_open(th: Thresholds) -> Rule:
    src = src_matcher(th.sources.alerts)

    def expr(bcu: str, t: OldestOpenIGrade) -> str:
        # The unattended one only: an attended I incident may stay open for hours, and is
        # shown beside it on the dashboards (demand_oldest_attended_open_igrade_age_seconds).
        oldest = sel(n.OLDEST_UNATTENDED_IGRADE, src, bcu)
        return f"max by (source, bcu) ({oldest}) > {t.max_age_seconds}"

    def limit(t: OldestOpenIGrade) -> str:
        return duration(t.max_age_seconds)

    return per_bcu_rule(
        th,
        n.ALERT_IGRADE_OLDEST,
        th.alerts.oldest_open_igrade,
        lambda b: b.oldest_open_igrade,
        expr,
        "I-grade incident waiting past target in {{ $labels.bcu }}",
        (
            "the oldest unattended I-grade incident has waited {{ $value | humanizeDuration }} "
            "for its first resource (limit ",
            limit,
            ").",
        ),
    )


def attended(th: Thresholds, grade: str) -> Rule:
    """I-grade within 15 minutes, or S-grade within 60: the same rule, its own threshold."""
    src = src_matcher(th.sources.alerts)
    is_i = grade == I_GRADE
    target_min = n.I_TARGET_MIN if is_i else n.S_TARGET_MIN
    a = th.alerts
    setting = a.igrade_attended_within_target if is_i else a.sgrade_attended_within_target

    def pick(b: BcuThresholds) -> AttendedWithinTarget:
        return b.igrade_attended_within_target if is_i else b.sgrade_attended_within_target

    def expr(bcu: str, t: AttendedWithinTarget) -> str:
        ratio = sel(n.BCU_ATTENDED_RATIO, f'grade="{grade}"', src, bcu)
        return (
            f"{ratio} < {number(t.min_share)}\n"
            f'and on (source, bcu)\n{n.BCU_GRADED}{{grade="{grade}"}} >= {t.min_incidents}'
        )

    def limit(t: AttendedWithinTarget) -> str:
        return f"{percent(t.min_share)} (alerting from {t.min_incidents} incidents)"

    before = (
        f"{{{{ $value | humanizePercentage }}}} of {grade}-grade incidents created in the "
        f"last 24h were attended within {target_min} minutes, below the floor of "
    )
    return per_bcu_rule(
        th,
        n.ALERT_IGRADE_ATTENDED if is_i else n.ALERT_SGRADE_ATTENDED,
        setting,
        pick,
        expr,
        f"{grade}-grade attendance within target below floor in " + "{{ $labels.bcu }}",
        (before, limit, "."),
    )


def s136_handover(th: Thresholds) -> Rule:
    src = src_matcher(th.sources.alerts)

    def expr(bcu: str, t: S136Handover) -> str:
        # The exporter keeps the event time of the latest handover whose wait was over 60
        # minutes (0 when none). Compared with the source's window end, not with an
        # earlier scrape, it fires however fast handovers arrive (a replay at full speed
        # too), for `within_seconds` of event time after the handover.
        last = sel(n.S136_LAST_LONG_WAIT, src, bcu)
        end = sel(n.WINDOW_END, src)
        return (
            f"(\n  max by (source) ({end})\n  - on (source) group_right ()\n"
            f"  max by (source, bcu) ({last} > 0)\n) < {t.within_seconds}"
        )

    def limit(t: S136Handover) -> str:
        return duration(t.within_seconds)

    before = (
        "an s136 handover {{ $value | humanizeDuration }} before the latest event time "
        f"waited over {n.S136_TARGET_MIN} minutes at the place of safety (alerting for "
    )
    return per_bcu_rule(
        th,
        n.ALERT_S136_HANDOVER,
        th.alerts.s136_handover_over_60_minutes,
        lambda b: b.s136_handover_over_60_minutes,
        expr,
        f"s136 handover over {n.S136_TARGET_MIN} minutes in " + "{{ $labels.bcu }}",
        (before, limit, " after each)."),
    )


def _looked_up(metric: str, *matchers: str) -> str:
    """Alert template text: ``metric`` of the alerting source and BCU, one decimal."""
    wanted = ",".join((n.ALL_INCIDENTS_MEASURE, *matchers, 'source="%s"', 'bcu="%s"'))
    query = f"max by (source, bcu) ({metric}{{{wanted}}})"
    return (
        f"{{{{ with printf `{query}` $labels.source $labels.bcu | query }}}}"
        '{{ . | first | value | printf "%.1f" }}{{ end }}'
    )


def above_expected(th: Thresholds) -> Rule:
    src = src_matcher(th.sources.alerts)

    def expr(bcu: str, t: AboveExpected) -> str:
        # max by: the exporter's job/instance labels (and measure) are not the alert's.
        score = sel(n.EXPECTED_SCORE, n.ALL_INCIDENTS_MEASURE, src, bcu)
        recent = sel(n.RECENT_INCIDENTS, n.ALL_INCIDENTS_MEASURE, src, bcu)
        # With no previous week the expectation is 0, so any busy hour would "surge".
        weeks = sel(n.EXPECTED_BASIS, src)
        return (
            f"max by (source, bcu) ({score}) > {number(t.min_score)}\n"
            f"and on (source, bcu)\nmax by (source, bcu) ({recent}) >= {t.min_recent}\n"
            f"and on (source)\nmax by (source) ({weeks}) >= {t.min_weeks}"
        )

    def limit(t: AboveExpected) -> str:
        weeks = "week" if t.min_weeks == 1 else "weeks"
        return (
            f"{number(t.min_score)} (alerting from {t.min_recent} incidents, "
            f"with {t.min_weeks} {weeks} of history or more)"
        )

    before = (
        _looked_up(n.RECENT_INCIDENTS)
        + " incidents in the last hour against "
        + _looked_up(n.EXPECTED_INCIDENTS, 'period="60m"')
        + " expected for these hours of the week (band up to "
        + _looked_up(n.EXPECTED_UPPER, 'period="60m"')
        + '): {{ $value | printf "%.1f" }} sigmas above expected, over the limit of '
    )
    return per_bcu_rule(
        th,
        n.ALERT_ABOVE_EXPECTED,
        th.alerts.above_expected,
        lambda b: b.above_expected,
        expr,
        "Demand above expected in {{ $labels.bcu }}",
        (before, limit, "."),
    )


def bcu_alert_rules(th: Thresholds) -> list[Rule]:
    return [
        rcrp_rate(th),
        igrade_open_list(th),
        igrade_oldest_open(th),
        attended(th, "I"),
        attended(th, "S"),
        s136_handover(th),
        above_expected(th),
    ]
