"""Shared dashboard defaults: the provisioned datasource, query and panel helpers.

Every panel and target names the datasource explicitly by the uid provisioning pins
(grafana/provisioning/datasources/prometheus.yml), so dashboards never depend on which
datasource happens to be the default in a Grafana instance.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus as prom
from grafana_foundation_sdk.builders import stat, timeseries
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import prometheus as pm

# Datasource every panel and target uses; grafana/provisioning pins the same uid.
DATASOURCE_UID: Final[str] = "demandmon-prometheus"
DATASOURCE_TYPE: Final[str] = "prometheus"
DATASOURCE = dm.DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)
SOURCE_VALUES = "label_values(demand_stream_watermark_timestamp_seconds, source)"
REF_IDS = "ABCDEFGHIJ"

# Any panel builder (stat, table, time series...), as Dashboard.with_panel accepts.
PanelBuilder = Builder[dm.Panel]


def query(expr: str, legend: str = "", ref: str = "A", instant: bool = False) -> prom.Dataquery:
    q = prom.Dataquery().expr(expr).ref_id(ref).datasource(DATASOURCE)
    if legend:
        q = q.legend_format(legend)
    return q.instant() if instant else q.range()


def table_query(expr: str, ref: str) -> prom.Dataquery:
    return query(expr, ref=ref, instant=True).format(pm.PromQueryFormat.TABLE)


def steps(*pairs: tuple[float | None, str]) -> db.ThresholdsConfig:
    """Absolute thresholds; the first pair's value is None (the base colour)."""
    return (
        db.ThresholdsConfig()
        .mode(dm.ThresholdsMode.ABSOLUTE)
        .steps([dm.Threshold(value=v, color=c) for v, c in pairs])
    )


NEUTRAL = steps((None, "blue"))


def stat_panel(
    title: str,
    expr: str,
    *,
    unit: str = "short",
    thresholds: db.ThresholdsConfig = NEUTRAL,
    description: str = "",
    w: int = 4,
    h: int = 4,
    decimals: int = 0,
    legend: str = "",
) -> stat.Panel:
    panel = (
        stat.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .with_target(query(expr, legend, instant=True))
        .unit(unit)
        .decimals(decimals)
        .thresholds(thresholds)
        .color_scheme(db.FieldColor().mode(dm.FieldColorModeId.THRESHOLDS))
        .color_mode(cm.BigValueColorMode.BACKGROUND)
        .graph_mode(cm.BigValueGraphMode.NONE)
        .text_mode(cm.BigValueTextMode.VALUE)
        .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .no_value("no data")
        .span(w)
        .height(h)
    )
    return panel.description(description) if description else panel


def trend_panel(
    title: str,
    targets: list[tuple[str, str]],
    *,
    unit: str = "short",
    description: str = "",
    threshold: float | None = None,
    w: int = 8,
    h: int = 8,
) -> timeseries.Panel:
    """A time series; `targets` are (expr, legend); `threshold` draws a dashed red line."""
    panel = (
        timeseries.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .targets([query(e, legend, REF_IDS[i]) for i, (e, legend) in enumerate(targets)])
        .unit(unit)
        .legend(
            cb.VizLegendOptions()
            .show_legend(True)
            .display_mode(cm.LegendDisplayMode.LIST)
            .placement(cm.LegendPlacement.BOTTOM)
        )
        .span(w)
        .height(h)
    )
    if threshold is not None:
        panel = panel.thresholds(steps((None, "green"), (threshold, "red"))).thresholds_style(
            cb.GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode.DASHED)
        )
    return panel.description(description) if description else panel


def source_variable(name: str, default: str, label: str) -> db.QueryVariable:
    """A source picker over every source the exporter reports (live and replays)."""
    return (
        db.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(SOURCE_VALUES)
        .refresh(dm.VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
        .current(dm.VariableOption(text=default, value=default, selected=True))
    )


def new_dashboard(uid: str, title: str, description: str) -> db.Dashboard:
    return (
        db.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["demandmon"])
        .readonly()  # provisioned from code: edits belong in demandmon/dashboards/
        .timezone("browser")
        .time("now-24h", "now")
        .refresh("30s")
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
    )


def to_dict(dashboard: db.Dashboard) -> dict[str, Any]:
    """Dashboard JSON model as plain data, panels numbered in layout order."""
    data: dict[str, Any] = json.loads(json.dumps(dashboard.build(), cls=JSONEncoder))
    for number, panel in enumerate(_all_panels(data), start=1):
        panel["id"] = number
    return data


def to_json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _all_panels(data: dict[str, Any]) -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = []
    for panel in data.get("panels", []):
        panels.append(panel)
        panels.extend(panel.get("panels", []))  # panels inside collapsed rows
    return panels


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel that shows data (rows excluded), in layout order."""
    return [p for p in _all_panels(dashboard) if p.get("type") != "row"]


def panel_exprs(dashboard: dict[str, Any]) -> list[str]:
    """The PromQL of every panel target as stored, variables unexpanded."""
    return [
        str(target["expr"])
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


# What Grafana puts in for its built-in interval variables at the default 24h range.
BUILTINS = {"__rate_interval": "5m", "__interval": "1m", "__range": "24h"}


def panel_queries(
    dashboard: dict[str, Any], variables: Mapping[str, str] | None = None
) -> list[str]:
    """Every panel's PromQL, ready to run: `$var` and `${var}` replaced by the variable's
    default (or by `variables[var]`), Grafana's built-in intervals by fixed values."""
    values = {**BUILTINS, **variable_defaults(dashboard), **(variables or {})}

    def expand(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return values.get(name, match.group(0))

    return [_VARIABLE.sub(expand, expr) for expr in panel_exprs(dashboard)]


_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def variable_defaults(dashboard: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for variable in dashboard.get("templating", {}).get("list", []):
        value = variable.get("current", {}).get("value")
        if isinstance(value, str):
            out[str(variable["name"])] = value
    return out


def data_link(title: str, url: str) -> db.DashboardLink:
    """A link on a panel (and on its values, as a data link): opens ``url`` in place."""
    return db.DashboardLink(title).type(dm.DashboardLinkType.LINK).url(url).target_blank(False)


def _plain(config: db.ThresholdsConfig) -> str:
    return json.dumps(config.build(), cls=JSONEncoder, sort_keys=True)


def per_bcu_thresholds(
    default: db.ThresholdsConfig, by_bcu: Mapping[str, db.ThresholdsConfig]
) -> list[Builder[dm.DashboardFieldConfigSourceOverrides]]:
    """Field overrides giving a BCU its own thresholds. The panel's series is named after
    its BCU (legend `{{bcu}}`), so a panel whose BCU is a template variable still shows
    the thresholds of the BCU selected; ``default`` applies to every other BCU."""
    out: list[Builder[dm.DashboardFieldConfigSourceOverrides]] = []
    for bcu, config in by_bcu.items():
        if _plain(config) == _plain(default):
            continue
        matcher = dm.MatcherConfig(id_val="byName", options=bcu)
        prop = dm.DynamicConfigValue(id_val="thresholds", value=config.build())
        out.append(db.DashboardFieldConfigSourceOverrides().matcher(matcher).properties([prop]))
    return out
