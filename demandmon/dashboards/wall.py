"""Control room wall: per-BCU tiles, the BCU maps, demand against expected, London
trends against last year, active alerts.

Tile colours come from deploy/thresholds.yaml through the same per-BCU lookup the alert
rules use (colours.py), so a tile turns red exactly where its alert condition starts
(counts are integers: "more than 25" is red from 26). Every tile, marker and band chart
opens BCU detail on its BCU.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import stat, table
from grafana_foundation_sdk.models import dashboard as dm

from demandmon.alerting import names as n
from demandmon.alerting.promql import duration, percent
from demandmon.alerting.thresholds import BcuThresholds, Thresholds
from demandmon.dashboards import colours, expected
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
from demandmon.dashboards.wall_maps import wall_maps
from schemas.vocabulary import BCU_CODES, BCU_NAMES

UID = "demandmon-wall"
FILE = "grafana/dashboards/control-room-wall.json"
TILE_WIDTH = 2  # 12 BCUs across the 24-column grid
BAND_WIDTH = 4  # 6 band charts a line, two lines


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


def _expected_tile(bcu: str) -> stat.Panel:
    return _tile(
        bcu,
        expected.status("$source", bcu),
        expected.STATUS_COLOURS,
        "incidents created in the last hour against the same hour of the week over the "
        "previous 4 weeks: above expected when above their mean + "
        f"{expected.ABOVE_EXPECTED_SCORE:g} sigma.",
    ).mappings(expected.status_mappings())


def _band(bcu: str) -> PanelBuilder:
    link = data_link(f"{bcu} detail", colours.detail_url(bcu))
    panel = expected.band_panel(
        f"{bcu} {BCU_NAMES[bcu]}", f'source="$source",bcu="{bcu}"', w=BAND_WIDTH
    )
    return panel.links([link])


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


LAST_YEAR = "52w"  # 364 days: the same weekday and hour a year back


def _last_year(metric: str, matchers: str) -> str:
    """``metric`` of $compare_source 52 weeks back, summed by source. Raw series, not
    recording rules: Prometheus never evaluates rules over backfilled history."""
    return f'sum by (source) ({metric}{{source="$compare_source",{matchers}}} offset {LAST_YEAR})'


def _trends(th: Thresholds) -> list[PanelBuilder]:
    this_year, last_year = "{{source}}", "{{source}}, 52 weeks earlier"
    compare = (
        "$compare_source is last year's stream turned into Prometheus history by "
        "`demandmon backfill FILE --source NAME` (docs/runbook.md); its line is read "
        f"`offset {LAST_YEAR}`, so the same weekday and hour of last year sits over today's."
    )
    rcrp = f'window="24h",{n.RCRP_CATEGORY_MATCHER}'
    incidents = _last_year("demand_rcrp_incidents", rcrp)
    deployed = _last_year("demand_rcrp_deployed_incidents", rcrp)
    return [
        trend_panel(
            "London RCRP incidents, last 24h: $source vs $compare_source a year earlier",
            [(f'{n.LONDON_RCRP_INCIDENTS}{{source="$source"}}', this_year), (incidents, last_year)],
            description=compare,
        ),
        trend_panel(
            "London RCRP deployment rate, last 24h: $source vs $compare_source a year earlier",
            [
                (f'{n.LONDON_RCRP_RATE}{{source="$source"}}', this_year),
                (f"{deployed}\n/ ({incidents} > 0)", last_year),
            ],
            unit="percentunit",
            threshold=th.defaults.rcrp_deployment_rate.max_share,
            description=compare + " Dashed line: the London-wide target.",
        ),
        trend_panel(
            "London open I-grade incidents: $source vs $compare_source a year earlier",
            [
                ('sum by (source) (demand_open_incidents{source="$source",grade="I"})', this_year),
                (_last_year("demand_open_incidents", 'grade="I"'), last_year),
            ],
            description=compare,
        ),
    ]


def _compare_variable() -> db.TextBoxVariable:
    # A text box, not a picker over label_values(): a backfilled source has series only a
    # year back, outside the time range a picker lists sources from.
    default = "last-year"
    return (
        db.TextBoxVariable("compare_source")
        .label("Compare with (backfilled source)")
        .description("The source last year's stream was backfilled as (demandmon backfill).")
        .default_value(default)
        .current(dm.VariableOption(text=default, value=default, selected=True))
    )


def wall(th: Thresholds) -> db.Dashboard:
    dash = (
        new_dashboard(
            UID,
            "Control room wall",
            "Live demand per BCU against deploy/thresholds.yaml, and London against last year.",
        )
        .with_variable(source_variable("source", "live", "Source"))
        .with_variable(_compare_variable())
        .with_panel(_alerts_panel())
        .with_row(db.Row("Last hour against expected"))
    )
    for bcu in BCU_CODES:
        dash = dash.with_panel(_expected_tile(bcu))
    dash = dash.with_row(db.Row("BCU map"))
    for panel in wall_maps(th):
        dash = dash.with_panel(panel)
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
    dash = dash.with_row(db.Row("Incidents in the last hour against the expected band"))
    for bcu in BCU_CODES:
        dash = dash.with_panel(_band(bcu))
    dash = dash.with_row(db.Row("London against the same period last year"))
    for panel in _trends(th):
        dash = dash.with_panel(panel)
    return dash
