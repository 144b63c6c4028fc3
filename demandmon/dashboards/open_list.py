"""The open-incident list on BCU detail: a table through the Infinity JSON datasource.

The exporter serves GET /open-incidents?source=S&bcu=B as a JSON array, oldest first, of
{incident_id, bcu, category, grade, age_seconds, attended, past_target} (no free text;
docs/metrics.md). grafana/provisioning/datasources/open-incidents.yml provisions the
datasource with the exporter as its base URL and the same login as /metrics.
"""

from __future__ import annotations

from typing import Any, Final

from grafana_foundation_sdk.builders import table
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard as dm

INFINITY_TYPE: Final[str] = "yesoreyeram-infinity-datasource"
INFINITY_UID: Final[str] = "demandmon-open-incidents"
INFINITY = dm.DataSourceRef(type_val=INFINITY_TYPE, uid=INFINITY_UID)
PATH: Final[str] = "/open-incidents"
# JSON field -> (column title, Infinity column type), in the table's order.
COLUMNS: Final[dict[str, tuple[str, str]]] = {
    "incident_id": ("Incident", "string"),
    "grade": ("Grade", "string"),
    "category": ("Category", "string"),
    "age_seconds": ("Age", "number"),
    "attended": ("Attended", "boolean"),
    "past_target": ("Past target", "boolean"),
    "bcu": ("BCU", "string"),
}


class InfinityQuery(cogvariants.Dataquery):
    def __init__(self, params: dict[str, str]) -> None:
        self.params = params

    def to_json(self) -> dict[str, Any]:
        return {
            "refId": "A",
            "datasource": INFINITY.to_json(),
            "type": "json",
            "source": "url",
            "format": "table",
            "parser": "backend",
            "url": PATH,
            "url_options": {
                "method": "GET",
                "params": [{"key": k, "value": v} for k, v in self.params.items()],
            },
            "root_selector": "",
            "columns": [
                {"selector": key, "text": text, "type": kind}
                for key, (text, kind) in COLUMNS.items()
            ],
        }


class InfinityQueryBuilder(cogbuilder.Builder[cogvariants.Dataquery]):
    def __init__(self, params: dict[str, str]) -> None:
        self._query = InfinityQuery(params)

    def build(self) -> cogvariants.Dataquery:
        return self._query


def open_incidents_table(params: dict[str, str]) -> table.Panel:
    """``params``: the query string, template variables allowed (source, bcu)."""
    age = [
        dm.DynamicConfigValue(id_val="unit", value="s"),
        dm.DynamicConfigValue(id_val="decimals", value=0),
    ]
    past = dm.ValueMap(
        options={
            "true": dm.ValueMappingResult(text="PAST TARGET", color="red", index=0),
            "false": dm.ValueMappingResult(text="", index=1),
        }
    )
    return (
        table.Panel()
        .title("Open incidents, oldest first")
        .description(
            "Every open incident of the BCU at the source's latest event time, from the "
            "exporter's /open-incidents (`demandmon open` prints the same list)."
        )
        .datasource(INFINITY)
        .with_target(InfinityQueryBuilder(params))
        .override_by_name("Age", age)
        .override_by_name("Past target", [dm.DynamicConfigValue(id_val="mappings", value=[past])])
        .span(24)
        .height(10)
    )


def infinity_targets(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every Infinity target of a dashboard model (for tests: the URL each one calls)."""
    return [
        target
        for panel in dashboard.get("panels", [])
        for target in panel.get("targets", [])
        if target.get("datasource", {}).get("type") == INFINITY_TYPE
    ]
