"""Recording rules: the per-BCU and London figures alerts and dashboards read.

Every ratio is a sum divided by a sum. London figures are re-summed from the per-BCU
counts, never averaged from per-BCU ratios (a quiet BCU would weigh as much as a busy
one). Denominators are filtered with `> 0` so a BCU with no incidents has no ratio
rather than NaN, which would colour a wall tile and never compare true in an alert.
"""

from __future__ import annotations

from demandmon.alerting import names as n

Rule = dict[str, str]

_RCRP_24H = f'{n.RCRP_CATEGORY_MATCHER},window="24h"'


def _record(name: str, expr: str) -> Rule:
    return {"record": name, "expr": expr}


def rcrp_rules() -> list[Rule]:
    return [
        _record(
            n.BCU_RCRP_INCIDENTS,
            f"sum by (source, bcu) (demand_rcrp_incidents{{{_RCRP_24H}}})",
        ),
        _record(
            n.BCU_RCRP_DEPLOYED,
            f"sum by (source, bcu) (demand_rcrp_deployed_incidents{{{_RCRP_24H}}})",
        ),
        _record(n.BCU_RCRP_RATE, f"{n.BCU_RCRP_DEPLOYED} / ({n.BCU_RCRP_INCIDENTS} > 0)"),
        _record(n.LONDON_RCRP_INCIDENTS, f"sum by (source) ({n.BCU_RCRP_INCIDENTS})"),
        _record(n.LONDON_RCRP_DEPLOYED, f"sum by (source) ({n.BCU_RCRP_DEPLOYED})"),
        _record(n.LONDON_RCRP_RATE, f"{n.LONDON_RCRP_DEPLOYED} / ({n.LONDON_RCRP_INCIDENTS} > 0)"),
    ]


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
