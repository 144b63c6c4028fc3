"""RCRP evaluation: the briefing's category table for one source's whole stream.

Reads window="all" so a replayed month prints the same incidents / deployed / % deployed
per category as the force's RCRP briefing. The Total row is summed in PromQL and its
percentage is total deployed / total incidents, never an average of the rows. A map of
the BCUs shows where the deployment rate was high (bcu_map.py).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import table
from grafana_foundation_sdk.models import dashboard as dm

from demandmon.alerting import names as n
from demandmon.dashboards.bcu_map import bcu_map, with_centres
from demandmon.dashboards.common import (
    DATASOURCE,
    NEUTRAL,
    PanelBuilder,
    new_dashboard,
    source_variable,
    stat_panel,
    table_query,
)
from schemas.vocabulary import RCRP_LABELS

UID = "demandmon-rcrp-evaluation"
FILE = "grafana/dashboards/rcrp-evaluation.json"

ALL = f'source="$source",window="all",{n.RCRP_CATEGORY_MATCHER}'
INCIDENTS = f"demand_rcrp_incidents{{{ALL}}}"
DEPLOYED = f"demand_rcrp_deployed_incidents{{{ALL}}}"
TOTAL = "Total"


def _with_total(by_category: str, total: str) -> str:
    return f'{by_category}\nor\nlabel_replace({total}, "category", "{TOTAL}", "", "")'


def category_queries() -> dict[str, str]:
    """refId -> PromQL for the table's three columns."""
    return {
        "A": _with_total(f"sum by (category) ({INCIDENTS})", f"sum({INCIDENTS})"),
        "B": _with_total(f"sum by (category) ({DEPLOYED})", f"sum({DEPLOYED})"),
        "C": _with_total(
            f"sum by (category) ({DEPLOYED}) / (sum by (category) ({INCIDENTS}) > 0)",
            f"sum({DEPLOYED}) / (sum({INCIDENTS}) > 0)",
        ),
    }


def _category_table() -> table.Panel:
    names = {"Value #A": "Incidents", "Value #B": "Deployed", "Value #C": "% deployed"}
    order = {"category": 0, "Value #A": 1, "Value #B": 2, "Value #C": 3}
    labels = {**RCRP_LABELS, TOTAL: TOTAL}
    mapping = dm.ValueMap(
        options={
            key: dm.ValueMappingResult(text=text, index=i)
            for i, (key, text) in enumerate(labels.items())
        }
    )
    percent = [
        dm.DynamicConfigValue(id_val="unit", value="percentunit"),
        dm.DynamicConfigValue(id_val="decimals", value=1),
    ]
    panel = (
        table.Panel()
        .title("RCRP incidents by category, whole stream of $source")
        .description(
            "Incidents by their latest category; deployed = at least one resource "
            "assigned. Same layout as the RCRP briefing table."
        )
        .datasource(DATASOURCE)
        .targets([table_query(expr, ref) for ref, expr in category_queries().items()])
        .with_transformation(dm.DataTransformerConfig(id_val="merge", options={}))
        .with_transformation(
            dm.DataTransformerConfig(
                id_val="organize",
                options={
                    "excludeByName": {"Time": True},
                    "indexByName": order,
                    "renameByName": {**names, "category": "Category"},
                },
            )
        )
        .mappings([mapping])
        .decimals(0)
        .override_by_name("% deployed", percent)
        .sort_by([cb.TableSortByFieldState().display_name("Incidents").desc(True)])
        .span(24)
        .height(9)
    )
    return panel


def _headline() -> list[PanelBuilder]:
    return [
        stat_panel("RCRP incidents", f"sum({INCIDENTS})", w=6),
        stat_panel("RCRP deployments", f"sum({DEPLOYED})", w=6),
        stat_panel(
            "Deployment rate",
            f"sum({DEPLOYED}) / (sum({INCIDENTS}) > 0)",
            unit="percentunit",
            w=6,
        ),
        stat_panel(
            "Officer hours on RCRP incidents",
            f"sum(demand_officer_time_seconds{{{ALL}}}) / 3600",
            unit="h",
            w=6,
        ),
    ]


def _map() -> PanelBuilder:
    rate = f"sum by (bcu) ({DEPLOYED})\n/ (sum by (bcu) ({INCIDENTS}) > 0)"
    return (
        bcu_map(
            "RCRP deployment rate by BCU, whole stream of $source",
            with_centres(rate),
            description="Share of each BCU's RCRP incidents police were deployed to, over the "
            "source's whole stream: green low, red high (0 to 100%).",
            thresholds=NEUTRAL,
            unit="percentunit",
            colour=db.FieldColor().mode(dm.FieldColorModeId.CONTINUOUS_GR_YL_RD),
            w=24,
            h=12,
        )
        .min(0)
        .max(1)
    )


def rcrp_evaluation() -> db.Dashboard:
    dash = (
        new_dashboard(
            UID,
            "RCRP evaluation",
            "A source's whole stream in the RCRP briefing's terms (window=all).",
        )
        .time("now-7d", "now")
        .with_variable(source_variable("source", "live", "Source"))
    )
    for panel in _headline():
        dash = dash.with_panel(panel)
    return dash.with_panel(_category_table()).with_panel(_map())
