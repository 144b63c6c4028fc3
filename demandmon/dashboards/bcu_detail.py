"""BCU detail: one BCU's RCRP, I-grade and s136 figures, now and over time.

The BCU is a template variable, and Grafana thresholds cannot follow a variable, so
these panels are uncoloured; the per-BCU colours live on the wall, one tile per BCU.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.models import dashboard as dm

from demandmon.alerting import names as n
from demandmon.dashboards.common import (
    PanelBuilder,
    new_dashboard,
    source_variable,
    stat_panel,
    trend_panel,
)
from schemas.vocabulary import BCU_CODES

FIRST_BCU = BCU_CODES[0]  # the BCU the dashboard opens on

UID = "demandmon-bcu-detail"
FILE = "grafana/dashboards/bcu-detail.json"

SEL = 'source="$source",bcu="$bcu"'


def bcu_variable() -> db.CustomVariable:
    # A fixed list rather than label_values(): a BCU with no incidents yet is still a BCU.
    return (
        db.CustomVariable("bcu")
        .label("BCU")
        .values(",".join(BCU_CODES))
        .current(dm.VariableOption(text=FIRST_BCU, value=FIRST_BCU, selected=True))
        .options([dm.VariableOption(text=c, value=c, selected=c == FIRST_BCU) for c in BCU_CODES])
    )


def _last_24h() -> list[PanelBuilder]:
    return [
        stat_panel("RCRP incidents", f"{n.BCU_RCRP_INCIDENTS}{{{SEL}}}"),
        stat_panel("RCRP deployed", f"{n.BCU_RCRP_DEPLOYED}{{{SEL}}}"),
        stat_panel(
            "RCRP deployment rate", f"{n.BCU_RCRP_RATE}{{{SEL}}}", unit="percentunit", decimals=1
        ),
        stat_panel("I-grade incidents", f'{n.BCU_GRADED}{{{SEL},grade="I"}}'),
        stat_panel(
            f"I-grade attended within {n.I_TARGET_MIN} min",
            f'{n.BCU_ATTENDED_RATIO}{{{SEL},grade="I"}}',
            unit="percentunit",
            decimals=1,
        ),
        stat_panel("s136 detentions", f'sum(demand_s136_detentions{{{SEL},window="24h"}})'),
    ]


def _now() -> list[PanelBuilder]:
    wait = (
        f'sum(demand_s136_handover_wait_seconds_sum{{{SEL},window="24h"}})\n'
        f'/ (sum(demand_s136_handovers{{{SEL},window="24h"}}) > 0)'
    )
    return [
        stat_panel("Open I-grade", f'sum(demand_open_incidents{{{SEL},grade="I"}})'),
        stat_panel(
            f"Open I-grade unattended past {n.I_TARGET_MIN} min",
            f'sum(demand_open_incidents_past_target{{{SEL},grade="I"}})',
        ),
        stat_panel(
            "Oldest open I-grade",
            f"max(demand_oldest_open_igrade_age_seconds{{{SEL}}})",
            unit="s",
        ),
        stat_panel("s136 in custody", f"sum(demand_s136_in_custody{{{SEL}}})"),
        stat_panel(
            f"s136 handovers over {n.S136_TARGET_MIN} min, 24h",
            f'sum(demand_s136_handovers_over_60_minutes{{{SEL},window="24h"}})',
        ),
        stat_panel("s136 mean handover wait, 24h", wait, unit="s"),
    ]


def _trends() -> list[PanelBuilder]:
    rcrp = f'{SEL},{n.RCRP_CATEGORY_MATCHER},window="24h"'
    return [
        trend_panel(
            "RCRP incidents by category, last 24h",
            [(f"sum by (category) (demand_rcrp_incidents{{{rcrp}}})", "{{category}}")],
            w=12,
        ),
        trend_panel(
            "RCRP deployment rate, last 24h",
            [(f"{n.BCU_RCRP_RATE}{{{SEL}}}", "{{bcu}}")],
            unit="percentunit",
            w=12,
        ),
        trend_panel(
            "Open incidents by grade",
            [(f"sum by (grade) (demand_open_incidents{{{SEL}}})", "{{grade}}")],
            w=12,
        ),
        trend_panel(
            "Officer hours, last 24h",
            [
                (
                    f'sum by (category) (demand_officer_hours{{{SEL},window="24h"}})',
                    "{{category}}",
                ),
                (f'sum(demand_s136_officer_hours{{{SEL},window="24h"}})', "s136 detentions"),
            ],
            w=12,
        ),
    ]


def bcu_detail() -> db.Dashboard:
    dash = (
        new_dashboard(UID, "BCU detail", "One BCU's demand figures for a chosen source.")
        .with_variable(source_variable("source", "live", "Source"))
        .with_variable(bcu_variable())
    )
    sections = [
        ("$bcu: last 24h", _last_24h()),
        ("$bcu: now", _now()),
        ("$bcu: over time", _trends()),
    ]
    for title, section in sections:
        dash = dash.with_row(db.Row(title))
        for panel in section:
            dash = dash.with_panel(panel)
    return dash
