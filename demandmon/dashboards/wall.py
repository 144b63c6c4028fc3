"""Control room wall: per-BCU tiles, London trends against last year, active alerts.

Tile colours come from deploy/thresholds.yaml through the same per-BCU lookup the alert
rules use (colours.py), so a tile turns red exactly where its alert condition starts
(counts are integers: "more than 25" is red from 26). Every tile opens BCU detail on its
BCU.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import stat, table
from grafana_foundation_sdk.models import dashboard as dm

from demandmon.alerting import names as n
from demandmon.alerting.promql import duration, percent
from demandmon.alerting.thresholds import BcuThresholds, Thresholds
from demandmon.dashboards import colours
from demandmon.dashboards.common import (
    DATASOURCE,
    PanelBuilder,
    data_link,
    new_dashboard,
    source_variable,
    stat_panel,
    table_query,
    trend_panel,
)
from schemas.vocabulary import BCU_CODES, BCU_NAMES

UID = "demandmon-wall"
FILE = "grafana/dashboards/control-room-wall.json"
TILE_WIDTH = 2  # 12 BCUs across the 24-column grid


def _tile(
    bcu: str, expr: str, thresholds: db.ThresholdsConfig, text: str, unit: str = "short"
) -> stat.Panel:
    """A BCU's tile; clicking it (panel link and data link) opens BCU detail on that BCU."""
    link = data_link(f"{bcu} detail", colours.detail_url(bcu))
    return (
        stat_panel(
            bcu,
            expr,
            unit=unit,
            thresholds=thresholds,
            description=f"{bcu} {BCU_NAMES[bcu]}: {text} Click for {bcu} detail.",
            w=TILE_WIDTH,
        )
        .links([link])
        .data_links([link])
    )


def _rcrp_tile(bcu: str, t: BcuThresholds) -> stat.Panel:
    limit = t.rcrp_deployment_rate
    return _tile(
        bcu,
        f'{n.BCU_RCRP_RATE}{{source="$source",bcu="{bcu}"}}',
        colours.rcrp_rate(t),
        "share of RCRP incidents created in the last 24h that police were deployed to. "
        f"Red above {percent(limit.max_share)}; the alert also needs "
        f"{limit.min_incidents} incidents.",
        unit="percentunit",
    )


def _open_list_tile(bcu: str, t: BcuThresholds) -> stat.Panel:
    limit = t.igrade_open_list.max_open
    return _tile(
        bcu,
        f'sum(demand_open_incidents{{source="$source",bcu="{bcu}",grade="I"}})',
        colours.open_list(t),
        f"open I-grade incidents. Red above {limit}.",
    )


def _oldest_tile(bcu: str, t: BcuThresholds) -> stat.Panel:
    limit = t.oldest_open_igrade.max_age_seconds
    return _tile(
        bcu,
        f'max({n.OLDEST_UNATTENDED_IGRADE}{{source="$source",bcu="{bcu}"}})',
        colours.oldest_unattended(t),
        "how long the oldest open I-grade incident not yet attended has waited. "
        f"Red over {duration(limit)}.",
        unit="s",
    )


def _custody_tile(bcu: str, t: BcuThresholds) -> stat.Panel:
    c = t.s136_in_custody
    return _tile(
        bcu,
        f'sum(demand_s136_in_custody{{source="$source",bcu="{bcu}"}})',
        colours.custody(t),
        f"s136 detentions started and not yet handed over. Amber from {c.amber}, red from {c.red}.",
    )


def _alerts_panel() -> table.Panel:
    hidden = {"Time": True, "Value": True, "__name__": True, "alertstate": True}
    return (
        table.Panel()
        .title("Active alerts")
        .description("Firing demandmon alerts; pending ones are not shown.")
        .datasource(DATASOURCE)
        .with_target(table_query('ALERTS{alertstate="firing"}', "A"))
        .with_transformation(
            dm.DataTransformerConfig(id_val="organize", options={"excludeByName": hidden})
        )
        .no_value("No alerts firing")
        .span(24)
        .height(6)
    )


def _trends(th: Thresholds) -> list[PanelBuilder]:
    def pair(metric: str) -> list[tuple[str, str]]:
        return [
            (f'{metric}{{source="$source"}}', "{{source}}"),
            (f'{metric}{{source="$compare_source"}}', "{{source}}"),
        ]

    compare = (
        "$compare_source should be last year's stream replayed with its event times "
        "shifted 52 weeks and paced in real time, so both lines share the time axis."
    )
    open_i = 'sum by (source) (demand_open_incidents{{source="{}",grade="I"}})'
    return [
        trend_panel(
            "London RCRP incidents, last 24h: $source vs $compare_source",
            pair(n.LONDON_RCRP_INCIDENTS),
            description=compare,
        ),
        trend_panel(
            "London RCRP deployment rate, last 24h: $source vs $compare_source",
            pair(n.LONDON_RCRP_RATE),
            unit="percentunit",
            threshold=th.defaults.rcrp_deployment_rate.max_share,
            description=compare + " Dashed line: the London-wide target.",
        ),
        trend_panel(
            "London open I-grade incidents: $source vs $compare_source",
            [
                (open_i.format("$source"), "{{source}}"),
                (open_i.format("$compare_source"), "{{source}}"),
            ],
            description=compare,
        ),
    ]


def wall(th: Thresholds) -> db.Dashboard:
    dash = (
        new_dashboard(
            UID,
            "Control room wall",
            "Live demand per BCU against deploy/thresholds.yaml, and London against last year.",
        )
        .with_variable(source_variable("source", "live", "Source"))
        .with_variable(source_variable("compare_source", "last-year", "Compare with"))
        .with_panel(_alerts_panel())
    )
    tiles = [
        ("RCRP deployment rate, last 24h", _rcrp_tile),
        ("I-grade open list", _open_list_tile),
        ("Oldest unattended I-grade", _oldest_tile),
        ("s136 in custody", _custody_tile),
    ]
    for title, tile in tiles:
        dash = dash.with_row(db.Row(title))
        for bcu in BCU_CODES:
            dash = dash.with_panel(tile(bcu, th.for_bcu(bcu)))
    dash = dash.with_row(db.Row("London against the same period last year"))
    for panel in _trends(th):
        dash = dash.with_panel(panel)
    return dash
