"""Recording rules: the per-BCU and London figures alerts and dashboards read.

Every ratio is a sum divided by a sum. London figures are re-summed from the per-BCU
counts, never averaged from per-BCU ratios (a quiet BCU would weigh as much as a busy
one). Denominators are filtered with `> 0` so a BCU with no incidents has no ratio
rather than NaN, which would colour a wall tile and never compare true in an alert.
"""

from __future__ import annotations

from demandmon.alerting import names as n

Rule = dict[str, str]


def _record(name: str, expr: str) -> Rule:
    return {"record": name, "expr": expr}


def rcrp_window_rules(window: str) -> list[Rule]:
    """Incidents, deployed and the deployment rate over one window, per BCU and London."""
    matchers = f'{n.RCRP_CATEGORY_MATCHER},window="{window}"'
    incidents, deployed = n.rcrp_incidents("bcu", window), n.rcrp_deployed("bcu", window)
    london_incidents = n.rcrp_incidents("london", window)
    london_deployed = n.rcrp_deployed("london", window)
    return [
        _record(incidents, f"sum by (source, bcu) (demand_rcrp_incidents{{{matchers}}})"),
        _record(deployed, f"sum by (source, bcu) (demand_rcrp_deployed_incidents{{{matchers}}})"),
        _record(n.rcrp_rate("bcu", window), f"{deployed} / ({incidents} > 0)"),
        _record(london_incidents, f"sum by (source) ({incidents})"),
        _record(london_deployed, f"sum by (source) ({deployed})"),
        _record(n.rcrp_rate("london", window), f"{london_deployed} / ({london_incidents} > 0)"),
    ]


def rcrp_rules() -> list[Rule]:
    """The 1h, 24h, 7d and 28d windows (names.RATE_WINDOWS), in that order."""
    return [rule for window in n.RATE_WINDOWS for rule in rcrp_window_rules(window)]


def attendance_rules() -> list[Rule]:
    # Attended-within-target exists for grades I (15 min) and S (60 min); dividing by
    # incidents of the same grade matches one-to-one on (source, bcu, grade).
    return [
        _record(
            n.BCU_GRADED,
            'sum by (source, bcu, grade) (demand_graded_incidents{window="24h"})',
        ),
        _record(
            n.BCU_ATTENDED,
            'sum by (source, bcu, grade) (demand_attended_within_target_incidents{window="24h"})',
        ),
        _record(n.BCU_ATTENDED_RATIO, f"{n.BCU_ATTENDED} / ({n.BCU_GRADED} > 0)"),
        _record(n.LONDON_GRADED, f"sum by (source, grade) ({n.BCU_GRADED})"),
        _record(n.LONDON_ATTENDED, f"sum by (source, grade) ({n.BCU_ATTENDED})"),
        _record(n.LONDON_ATTENDED_RATIO, f"{n.LONDON_ATTENDED} / ({n.LONDON_GRADED} > 0)"),
    ]


def recording_groups() -> list[dict[str, object]]:
    # Rules in a group run in order, so each ratio reads counts recorded this round.
    return [
        {"name": "demandmon-rcrp.rules", "rules": rcrp_rules()},
        {"name": "demandmon-attendance.rules", "rules": attendance_rules()},
    ]


def recording_rule_names() -> list[str]:
    return [rule["record"] for rule in rcrp_rules() + attendance_rules()]
