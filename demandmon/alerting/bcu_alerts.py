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
    AlertSetting,
    AttendedWithinTarget,
    BcuThresholds,
    IGradeOpenList,
    OldestOpenIGrade,
    RcrpDeploymentRate,
    S136Handover,
    Thresholds,
)

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
        oldest = sel("demand_oldest_open_igrade_age_seconds", src, bcu)
        text = f"max by (source, bcu) ({oldest}) > {t.max_age_seconds}"
        if t.require_unattended:
            # The oldest open incident may be attended and still open; only page when an
            # I incident is also waiting for its first resource past the 15-minute target.
            waiting = sel("demand_open_incidents_past_target", 'grade="I"', src, bcu)
            text += f"\nand on (source, bcu)\nsum by (source, bcu) ({waiting}) > 0"
        return text

    def limit(t: OldestOpenIGrade) -> str:
        text = duration(t.max_age_seconds)
        if t.require_unattended:
            text += (
                f") and at least one is still unattended past the {n.I_TARGET_MIN}-minute target"
            )
        else:
            text += ")"
        return text

    return per_bcu_rule(
        th,
        n.ALERT_IGRADE_OLDEST,
        th.alerts.oldest_open_igrade,
        lambda b: b.oldest_open_igrade,
        expr,
        "I-grade incident waiting past target in {{ $labels.bcu }}",
        (
            "the oldest open I-grade incident is {{ $value | humanizeDuration }} old (limit ",
            limit,
            ".",
        ),
    )


def igrade_attended(th: Thresholds) -> Rule:
    src = src_matcher(th.sources.alerts)

    def expr(bcu: str, t: AttendedWithinTarget) -> str:
        ratio = sel(n.BCU_ATTENDED_RATIO, 'grade="I"', src, bcu)
        return (
            f"{ratio} < {number(t.min_share)}\n"
            f'and on (source, bcu)\n{n.BCU_GRADED}{{grade="I"}} >= {t.min_incidents}'
        )

    def limit(t: AttendedWithinTarget) -> str:
        return f"{percent(t.min_share)} (alerting from {t.min_incidents} incidents)"

    before = (
        "{{ $value | humanizePercentage }} of I-grade incidents created in the last 24h "
        f"were attended within {n.I_TARGET_MIN} minutes, below the floor of "
    )
    return per_bcu_rule(
        th,
        n.ALERT_IGRADE_ATTENDED,
        th.alerts.igrade_attended_within_target,
        lambda b: b.igrade_attended_within_target,
        expr,
        "I-grade attendance within target below floor in {{ $labels.bcu }}",
        (before, limit, "."),
    )


def s136_handover(th: Thresholds) -> Rule:
    src = src_matcher(th.sources.alerts)

    def expr(bcu: str, t: S136Handover) -> str:
        # The window="1h" gauge cannot show these: a wait over 60 minutes means the
        # incident was created in an earlier hour bucket. The window="all" total only
        # grows, so "now minus its lowest value in the last hour" is the exact count of
        # such handovers recorded in the last hour (and a Redis reset reads 0, not < 0).
        total = sel("demand_s136_handovers_over_60_minutes", 'window="all"', src, bcu)
        return (
            f"sum by (source, bcu) (\n  {total}\n  - min_over_time({total}[1h])\n)"
            f" > {t.max_in_last_hour}"
        )

    def limit(t: S136Handover) -> str:
        return str(t.max_in_last_hour)

    before = (
        "{{ $value }} s136 handover(s) recorded in the last hour waited over "
        f"{n.S136_TARGET_MIN} minutes at the place of safety (allowed: "
    )
    return per_bcu_rule(
        th,
        n.ALERT_S136_HANDOVER,
        th.alerts.s136_handover_over_60_minutes,
        lambda b: b.s136_handover_over_60_minutes,
        expr,
        f"s136 handover over {n.S136_TARGET_MIN} minutes in " + "{{ $labels.bcu }}",
        (before, limit, ")."),
    )


def bcu_alert_rules(th: Thresholds) -> list[Rule]:
    return [
        rcrp_rate(th),
        igrade_open_list(th),
        igrade_oldest_open(th),
        igrade_attended(th),
        s136_handover(th),
    ]
