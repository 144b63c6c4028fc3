"""Drill-down and colours: every BCU tile on the wall opens BCU detail on that BCU; BCU
detail shows, for whichever BCU is selected, the thresholds deploy/thresholds.yaml gives
that BCU (the oracle here is the thresholds file, read directly); the oldest unattended
I-grade tile sits beside the attended-not-closed one; S-grade has its panel; the open list
reads the exporter through the Infinity datasource compose installs and provisions."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from demandmon.alerting.thresholds import THRESHOLDS_FILE, load_thresholds, parse_thresholds
from demandmon.dashboards import dashboard_models
from demandmon.dashboards.common import panels
from demandmon.dashboards.open_list import COLUMNS, INFINITY_TYPE, INFINITY_UID
from schemas.vocabulary import BCU_CODES

ROOT = Path(__file__).resolve().parents[2]
WALL = "grafana/dashboards/control-room-wall.json"
DETAIL = "grafana/dashboards/bcu-detail.json"
Model = dict[str, Any]

# Wall row -> BCU detail tile showing the same figure for the selected BCU.
SAME_FIGURE = {
    "RCRP deployment rate": "RCRP deployment rate",
    "I-grade open list": "Open I-grade",
    "Oldest unattended I-grade": "Oldest unattended I-grade",
    "s136 in custody": "s136 in custody",
}


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / THRESHOLDS_FILE).read_text())
    return doc


@pytest.fixture(scope="module")
def models() -> dict[str, Model]:
    return dashboard_models(load_thresholds(ROOT / THRESHOLDS_FILE))


def _rows(model: Model) -> dict[str, list[Model]]:
    rows: dict[str, list[Model]] = {}
    current = ""
    for panel in model["panels"]:
        if panel["type"] == "row":
            current = panel["title"]
            rows[current] = []
        else:
            rows.setdefault(current, []).append(panel)
    return rows


def _steps(config: Model) -> list[tuple[float | None, str]]:
    return [(s["value"], s["color"]) for s in config["steps"]]


def _detail_steps(panel: Model, bcu: str) -> list[tuple[float | None, str]]:
    """The thresholds Grafana applies when the series is named `bcu` (legend {{bcu}})."""
    assert panel["targets"][0]["legendFormat"] == "{{bcu}}", panel["title"]
    for override in panel["fieldConfig"].get("overrides", []):
        if override["matcher"] == {"id": "byName", "options": bcu}:
            [prop] = override["properties"]
            assert prop["id"] == "thresholds"
            return _steps(prop["value"])
    return _steps(panel["fieldConfig"]["defaults"]["thresholds"])


def _expected(raw: dict[str, Any], bcu: str, row: str) -> list[tuple[float | None, str]]:
    """Independent of the generator: the file's values, merged by hand."""

    def value(section: str, key: str) -> Any:
        override = (raw.get("bcu_overrides") or {}).get(bcu) or {}
        return (override.get(section) or {}).get(key, raw["defaults"][section][key])

    if row == "RCRP deployment rate":
        return [(None, "green"), (value("rcrp_deployment_rate", "max_share"), "red")]
    if row == "I-grade open list":
        return [(None, "green"), (value("igrade_open_list", "max_open") + 1, "red")]
    if row == "Oldest unattended I-grade":
        return [(None, "green"), (value("oldest_open_igrade", "max_age_seconds") + 1, "red")]
    amber, red = value("s136_in_custody", "amber"), value("s136_in_custody", "red")
    return [(None, "green"), (amber, "orange"), (red, "red")]


def test_every_wall_tile_links_to_its_bcu_detail(models: dict[str, Model]) -> None:
    rows = _rows(models[WALL])
    for row in SAME_FIGURE:
        [title] = [t for t in rows if t.startswith(row)]
        tiles = rows[title]
        assert [t["title"] for t in tiles] == list(BCU_CODES)
        for tile in tiles:
            bcu = tile["title"]
            for links in (tile["links"], tile["fieldConfig"]["defaults"]["links"]):
                [link] = links
                url = link["url"]
                assert url.startswith("/d/demandmon-bcu-detail/"), url
                assert f"var-bcu={bcu}&" in url and "var-source=${source}" in url
                assert "${__url_time_range}" in url


def test_link_target_is_the_bcu_detail_dashboard(models: dict[str, Model]) -> None:
    detail = models[DETAIL]
    variables = {v["name"] for v in detail["templating"]["list"]}
    assert detail["uid"] == "demandmon-bcu-detail" and {"source", "bcu"} <= variables


@pytest.mark.parametrize("bcu", BCU_CODES)
def test_detail_tiles_carry_the_wall_colours_of_the_selected_bcu(
    models: dict[str, Model], raw: dict[str, Any], bcu: str
) -> None:
    wall_rows = _rows(models[WALL])
    detail = {p["title"]: p for p in panels(models[DETAIL])}
    for row, detail_title in SAME_FIGURE.items():
        [title] = [t for t in wall_rows if t.startswith(row)]
        [tile] = [t for t in wall_rows[title] if t["title"] == bcu]
        expected = _expected(raw, bcu, row)
        assert _steps(tile["fieldConfig"]["defaults"]["thresholds"]) == expected, (row, bcu)
        assert _detail_steps(detail[detail_title], bcu) == expected, (detail_title, bcu)


def test_detail_colours_follow_an_override_added_to_the_file() -> None:
    text = (
        (ROOT / THRESHOLDS_FILE)
        .read_text()
        .replace(
            "CE:  # Central East\n",
            "CE:  # Central East\n    s136_in_custody: {amber: 1, red: 2}\n",
        )
    )
    detail = {p["title"]: p for p in panels(dashboard_models(parse_thresholds(text))[DETAIL])}
    assert _detail_steps(detail["s136 in custody"], "CE") == [
        (None, "green"),
        (1, "orange"),
        (2, "red"),
    ]
    assert _detail_steps(detail["s136 in custody"], "NE")[1] == (3, "orange")


def test_oldest_unattended_has_thresholds_and_attended_sits_beside_it(
    models: dict[str, Model],
) -> None:
    now = next(v for k, v in _rows(models[DETAIL]).items() if k.endswith("now"))
    titles = [p["title"] for p in now]
    i = titles.index("Oldest unattended I-grade")
    assert titles[i + 1] == "Oldest attended I-grade, not closed"
    unattended, attended = now[i], now[i + 1]
    assert "demand_oldest_unattended_igrade_age_seconds" in unattended["targets"][0]["expr"]
    assert "demand_oldest_attended_open_igrade_age_seconds" in attended["targets"][0]["expr"]
    assert attended["gridPos"]["y"] == unattended["gridPos"]["y"]
    assert _steps(unattended["fieldConfig"]["defaults"]["thresholds"])[-1] == (901, "red")
    assert _steps(attended["fieldConfig"]["defaults"]["thresholds"]) == [(None, "blue")]


def test_sgrade_attendance_has_a_panel_like_igrade(models: dict[str, Model]) -> None:
    detail = {p["title"]: p for p in panels(models[DETAIL])}
    for grade, minutes in (("I", 15), ("S", 60)):
        panel = detail[f"{grade}-grade attended within {minutes} min"]
        assert f'grade="{grade}"' in panel["targets"][0]["expr"]
        assert _steps(panel["fieldConfig"]["defaults"]["thresholds"]) == [
            (None, "red"),
            (0.9, "green"),
        ]


def test_rate_trend_shows_every_window(models: dict[str, Model]) -> None:
    detail = {p["title"]: p for p in panels(models[DETAIL])}
    exprs = [t["expr"] for t in detail["RCRP deployment rate: last 1h, 24h, 7d, 28d"]["targets"]]
    assert [re.sub(r"\{.*", "", e) for e in exprs] == [
        f"bcu:demand_rcrp_deployment_rate:ratio{w}" for w in ("1h", "24h", "7d", "28d")
    ]


def test_open_list_table_reads_the_exporter_through_infinity(models: dict[str, Model]) -> None:
    [table] = [p for p in panels(models[DETAIL]) if p["type"] == "table"]
    assert table["datasource"] == {"type": INFINITY_TYPE, "uid": INFINITY_UID}
    [target] = table["targets"]
    assert target["url"] == "/open-incidents" and target["format"] == "table"
    params = {p["key"]: p["value"] for p in target["url_options"]["params"]}
    assert params == {"source": "$source", "bcu": "$bcu"}
    assert [c["selector"] for c in target["columns"]] == list(COLUMNS)
    # The shape fixed for the exporter's endpoint (docs; no free text).
    assert set(COLUMNS) == {
        "incident_id",
        "bcu",
        "category",
        "grade",
        "age_seconds",
        "attended",
        "past_target",
    }


def test_compose_installs_and_provisions_the_json_datasource() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    grafana = compose["services"]["grafana"]
    assert grafana["environment"]["GF_INSTALL_PLUGINS"].split()[0] == INFINITY_TYPE
    provisioned = yaml.safe_load(
        (ROOT / "grafana/provisioning/datasources/open-incidents.yml").read_text()
    )["datasources"]
    [source] = provisioned
    assert (source["uid"], source["type"]) == (INFINITY_UID, INFINITY_TYPE)
    assert source["url"] == "https://exporter:9464"
    assert source["jsonData"]["allowedHosts"] == ["https://exporter:9464"]
    # /metrics' login, from a file compose mounts into Grafana.
    env = compose["x-web-env"]
    assert source["basicAuthUser"] == env["DEMANDMON_METRICS_USERNAME"]
    mounted = {s["target"] for s in grafana["secrets"]}
    for key in ("basicAuthPassword", "tlsCACert"):
        path = re.fullmatch(r"\$__file\{/run/secrets/(.+)\}", source["secureJsonData"][key])
        assert path and path.group(1) in mounted, key
