"""BCU detail: one BCU's RCRP, I-grade, S-grade and s136 figures, now and over time, its
demand against expected (the last hour, its band, the next 24 hours) and its
open-incident list.

The BCU is a template variable. Each coloured tile names its series after the BCU (legend
`{{bcu}}`) and carries one field override per BCU whose thresholds differ from London's,
so it shows the wall's colours for whichever BCU is selected (colours.py).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import stat
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

from demandmon.alerting import names as n
from demandmon.alerting.thresholds import Thresholds
from demandmon.dashboards import colours, expected
from demandmon.dashboards.common import (
    REF_IDS,
    PanelBuilder,
    new_dashboard,
    per_bcu_thresholds,
    query,
    source_variable,
    stat_panel,
    trend_panel,
)
from demandmon.dashboards.open_list import open_incidents_table
from schemas.vocabulary import BCU_CODES

FIRST_BCU = BCU_CODES[0]  # the BCU the dashboard opens on

UID = colours.DETAIL_UID
FILE = "grafana/dashboards/bcu-detail.json"

SEL = 'source="$source",bcu="$bcu"'
HOURS = 3600  # metrics are in seconds; people read hours


def bcu_variable() -> db.CustomVariable:
    # A fixed list rather than label_values(): a BCU with no incidents yet is still a BCU.
    return (
        db.CustomVariable("bcu")
        .label("BCU")
        .values(",".join(BCU_CODES))
        .current(dm.VariableOption(text=FIRST_BCU, value=FIRST_BCU, selected=True))
        .options([dm.VariableOption(text=c, value=c, selected=c == FIRST_BCU) for c in BCU_CODES])
    )


def coloured(
    th: Thresholds,
    title: str,
    expr: str,
    palette: colours.Colours,
    unit: str = "short",
    decimals: int = 0,
) -> stat.Panel:
    """A stat whose series is named after its BCU, in the wall's colours for that BCU."""
    default = palette(th.defaults)
    panel = stat_panel(
        title, expr, unit=unit, decimals=decimals, thresholds=default, legend="{{bcu}}"
    )
    return panel.overrides(per_bcu_thresholds(default, colours.by_bcu(th, palette)))


def _last_24h(th: Thresholds) -> list[PanelBuilder]:
    def attended(grade: str, target: int, palette: colours.Colours) -> stat.Panel:
        expr = f'{n.BCU_ATTENDED_RATIO}{{{SEL},grade="{grade}"}}'
        title = f"{grade}-grade attended within {target} min"
        return coloured(th, title, expr, palette, unit="percentunit", decimals=1)

    return [
        stat_panel("RCRP incidents", f"{n.BCU_RCRP_INCIDENTS}{{{SEL}}}"),
        coloured(
            th,
            "RCRP deployment rate",
            f"{n.BCU_RCRP_RATE}{{{SEL}}}",
            colours.rcrp_rate,
            unit="percentunit",
            decimals=1,
        ),
        stat_panel("I-grade incidents", f'{n.BCU_GRADED}{{{SEL},grade="I"}}'),
        attended("I", n.I_TARGET_MIN, colours.igrade_attended),
        stat_panel("S-grade incidents", f'{n.BCU_GRADED}{{{SEL},grade="S"}}'),
        attended("S", n.S_TARGET_MIN, colours.sgrade_attended),
    ]


def _now(th: Thresholds) -> list[PanelBuilder]:
    wait = (
        f'sum(demand_s136_handover_wait_seconds{{{SEL},window="24h"}})\n'
        f'/ (sum(demand_s136_handovers{{{SEL},window="24h"}}) > 0)'
    )
    return [
        coloured(
            th,
            "Open I-grade",
            f'sum by (bcu) (demand_open_incidents{{{SEL},grade="I"}})',
            colours.open_list,
        ),
        stat_panel(
            f"Open I-grade unattended past {n.I_TARGET_MIN} min",
            f'sum(demand_open_incidents_past_target{{{SEL},grade="I"}})',
        ),
        coloured(
            th,
            "Oldest unattended I-grade",
            f"max by (bcu) ({n.OLDEST_UNATTENDED_IGRADE}{{{SEL}}})",
            colours.oldest_unattended,
            unit="s",
        ),
        stat_panel(
            "Oldest attended I-grade, not closed",
            f"max({n.OLDEST_ATTENDED_IGRADE}{{{SEL}}})",
            unit="s",
            description="Attended and still open: shown, never alerted on.",
        ),
        coloured(
            th,
            "s136 in custody",
            f"sum by (bcu) (demand_s136_in_custody{{{SEL}}})",
            colours.custody,
        ),
        stat_panel(
            f"s136 handovers over {n.S136_TARGET_MIN} min, 24h",
            f'sum(demand_s136_long_wait_handovers{{{SEL},window="24h"}})',
        ),
        stat_panel("s136 detentions, 24h", f'sum(demand_s136_detentions{{{SEL},window="24h"}})'),
        stat_panel("s136 mean handover wait, 24h", wait, unit="s"),
    ]


def _against_expected() -> list[PanelBuilder]:
    """The last hour against the same hour of the week over the previous 4 weeks, and
    what those weeks make expected for the next 24 hours."""
    incidents = f"{SEL},{expected.MEASURE}"
    next_24h = [
        (f'demand_expected_incidents_lower{{{incidents},period="next_24h"}}', "low"),
        (f'demand_expected_incidents{{{incidents},period="next_24h"}}', "expected"),
        (f'demand_expected_incidents_upper{{{incidents},period="next_24h"}}', "high"),
    ]
    band = f"mean -/+ {expected.ABOVE_EXPECTED_SCORE:g} sigma"
    return [
        stat_panel(
            "Last hour",
            expected.status("$source", "$bcu"),
            thresholds=expected.STATUS_COLOURS,
            description="Above expected: more incidents in the last hour than the same "
            f"hour of the week over the previous 4 weeks makes expected ({band}).",
        ).mappings(expected.status_mappings()),
        stat_panel("Incidents, last hour", f"demand_recent_incidents{{{incidents}}}"),
        stat_panel(
            "Expected, last hour",
            f'demand_expected_incidents{{{incidents},period="60m"}}',
            decimals=1,
        ),
        stat_panel("Expected next 24h", next_24h[1][0], decimals=0, w=4)
        .targets(
            [query(e, legend, REF_IDS[i], instant=True) for i, (e, legend) in enumerate(next_24h)]
        )
        .text_mode(cm.BigValueTextMode.VALUE_AND_NAME)
        .description(f"Incidents expected in the 24 hours after the window end: {band}."),
        stat_panel(
            "Weeks of history in the baseline",
            'demand_expected_basis{source="$source"}',
            description="How many of the previous 4 weeks the source has; the baseline "
            'uses only those: a source younger than a week has none yet ("No baseline yet").',
        ),
        expected.band_panel("$bcu: incidents in the last hour against expected", SEL, w=24),
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
            "RCRP deployment rate: last 1h, 24h, 7d, 28d",
            [(f"{n.rcrp_rate('bcu', window)}{{{SEL}}}", window) for window in n.RATE_WINDOWS],
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
                    f'sum by (category) (demand_officer_time_seconds{{{SEL},window="24h"}})'
                    f" / {HOURS}",
                    "{{category}}",
                ),
                (
                    f'sum(demand_s136_officer_time_seconds{{{SEL},window="24h"}}) / {HOURS}',
                    "on s136 incidents",
                ),
                (
                    f'sum(demand_s136_detention_seconds{{{SEL},window="24h"}}) / {HOURS}',
                    "s136 detention time",
                ),
            ],
            unit="h",
            w=12,
        ),
    ]


def bcu_detail(th: Thresholds) -> db.Dashboard:
    dash = (
        new_dashboard(UID, "BCU detail", "One BCU's demand figures for a chosen source.")
        .with_variable(source_variable("source", "live", "Source"))
        .with_variable(bcu_variable())
    )
    sections: list[tuple[str, list[PanelBuilder]]] = [
        ("$bcu: last 24h", _last_24h(th)),
        ("$bcu: now", _now(th)),
        ("$bcu: against expected", _against_expected()),
        ("$bcu: open incidents", [open_incidents_table({"source": "$source", "bcu": "$bcu"})]),
        ("$bcu: over time", _trends()),
    ]
    for title, section in sections:
        dash = dash.with_row(db.Row(title))
        for panel in section:
            dash = dash.with_panel(panel)
    return dash
