"""Grafana dashboards: current with the generator, wired to the provisioned datasource,
every panel querying something that exists, colours following deploy/thresholds.yaml."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from demandmon.alerting.recording import recording_rule_names
from demandmon.alerting.thresholds import (
    THRESHOLDS_FILE,
    Thresholds,
    parse_thresholds,
)
from demandmon.dashboards import dashboard_files, dashboard_models, panel_exprs, panel_queries
from demandmon.dashboards.bcu_map import BCU_CENTRE
from demandmon.dashboards.common import DATASOURCE_UID, panels
from demandmon.dashboards.open_list import INFINITY_TYPE, INFINITY_UID
from schemas.vocabulary import BCU_CODES

ROOT = Path(__file__).resolve().parents[2]
WALL = "grafana/dashboards/control-room-wall.json"
BCU_DETAIL = "grafana/dashboards/bcu-detail.json"
RCRP = "grafana/dashboards/rcrp-evaluation.json"
PIPELINE = "grafana/dashboards/pipeline-health.json"

Model = dict[str, Any]


@pytest.fixture(scope="module")
def models(th: Thresholds) -> dict[str, Model]:
    return dashboard_models(th)


def test_dashboards_are_up_to_date(th: Thresholds) -> None:
    files = dashboard_files(th)
    assert sorted(files) == sorted([WALL, BCU_DETAIL, RCRP, PIPELINE])
    for rel, content in files.items():
        assert (ROOT / rel).read_text() == content, f"{rel} stale: run `demandmon config generate`"
    assert dashboard_files(th) == files  # deterministic


def test_uids_and_titles_are_unique(models: dict[str, Model]) -> None:
    assert len({m["uid"] for m in models.values()}) == len(models)
    assert {m["title"] for m in models.values()} == {
        "Control room wall",
        "BCU detail",
        "RCRP evaluation",
        "Pipeline health",
    }


def test_every_datasource_reference_is_the_provisioned_uid(models: dict[str, Model]) -> None:
    provisioned = yaml.safe_load(
        (ROOT / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"]
    assert [(d["uid"], d["type"], d["url"]) for d in provisioned] == [
        (DATASOURCE_UID, "prometheus", "https://prometheus:9090")
    ]
    expected = {"type": "prometheus", "uid": DATASOURCE_UID}
    # The open-incident table reads the exporter through the JSON datasource instead.
    infinity = {"type": INFINITY_TYPE, "uid": INFINITY_UID}
    for rel, model in models.items():
        for panel in panels(model):
            if panel["datasource"] == infinity:
                assert all(t["datasource"] == infinity for t in panel["targets"])
                continue
            assert panel["datasource"] == expected, f"{rel}: {panel['title']}"
            for target in panel["targets"]:
                assert target["datasource"] == expected, f"{rel}: {panel['title']}"
        for variable in model.get("templating", {}).get("list", []):
            if "datasource" in variable:
                assert variable["datasource"] == expected, f"{rel}: ${variable['name']}"


def test_dashboard_provisioning_points_at_the_mounted_path() -> None:
    doc = yaml.safe_load((ROOT / "grafana/provisioning/dashboards/dashboards.yml").read_text())
    [provider] = doc["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


def test_every_panel_has_a_query_and_unique_ids(models: dict[str, Model]) -> None:
    for rel, model in models.items():
        ids = [p["id"] for p in model["panels"]]
        assert len(ids) == len(set(ids)), rel
        for panel in panels(model):
            if panel["datasource"]["type"] == INFINITY_TYPE:
                assert [t["url"] for t in panel["targets"]] == ["/open-incidents"]
                continue
            exprs = [t.get("expr") for t in panel["targets"]]
            assert exprs and all(exprs), f"{rel}: {panel['title']} has no query"
            refs = [t["refId"] for t in panel["targets"]]
            assert len(refs) == len(set(refs)) and all(refs), f"{rel}: {panel['title']}"


def _documented_metrics() -> set[str]:
    names = set(re.findall(r"`(demand_[a-z0-9_]+)`", (ROOT / "docs/metrics.md").read_text()))
    # Histograms are documented by their base name; PromQL reads the series Prometheus makes.
    histograms = {"demand_worker_event_latency_seconds"} & names
    for base in histograms:
        names |= {f"{base}_bucket", f"{base}_sum", f"{base}_count"}
    return names


KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
KEYWORDS |= {"and", "or", "unless", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression reads (strings, matchers, ranges, label lists out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    found = set()
    for match in re.finditer(r"(?<![\w.])[A-Za-z_:][\w:]*", text):
        rest = text[match.end() :].lstrip()
        if match.group(0) not in KEYWORDS and not rest.startswith("("):
            found.add(match.group(0))
    return found


def test_metric_name_parser() -> None:
    assert metric_names(
        'sum by (source) (rate(demand_events_applied_total{source="x"}[5m])) offset 1h'
    ) == {"demand_events_applied_total"}
    assert metric_names("time() - max(a:b:c) > 1e-05 and on (bcu) up") == {"a:b:c", "up"}


def test_every_query_reads_known_metrics(models: dict[str, Model]) -> None:
    known = _documented_metrics() | set(recording_rule_names()) | {"up", "ALERTS", BCU_CENTRE}
    for rel, model in models.items():
        for expr in panel_queries(model):
            unknown = metric_names(expr) - known
            assert not unknown, f"{rel}: {expr!r} reads {unknown}"


@pytest.mark.skipif(not shutil.which("promtool"), reason="promtool not found")
def test_every_query_is_valid_promql(models: dict[str, Model], tmp_path: Path) -> None:
    # promtool has no bare "parse this expression"; a recording rule per query will do.
    exprs = [q for model in models.values() for q in panel_queries(model)]
    rules = [{"record": f"dashboard:query:{i}", "expr": e} for i, e in enumerate(exprs)]
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_panel_queries_expands_variables(models: dict[str, Model]) -> None:
    wall = models[WALL]
    expanded = panel_queries(wall)
    assert len(expanded) == len(panel_exprs(wall))
    assert not [q for q in expanded if "$" in q]
    last_year = 'sum by (source) (demand_open_incidents{{source="{}",grade="I"}} offset 52w)'
    assert last_year.format("last-year") in expanded
    chosen = panel_queries(wall, {"source": "nov-2023", "compare_source": "nov-2022"})
    assert last_year.format("nov-2022") in chosen
    assert any("[5m]" in q for q in panel_queries(models[PIPELINE]))


def _tile(model: Model, row: str, bcu: str) -> Model:
    in_row = False
    panel: Model
    for panel in model["panels"]:
        if panel["type"] == "row":
            in_row = panel["title"].startswith(row)
        elif in_row and panel["title"] == bcu:
            return panel
    raise AssertionError(f"no {bcu} tile under {row}")


def _steps(panel: Model) -> list[tuple[float | None, str]]:
    return [
        (s["value"], s["color"]) for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    ]


def test_wall_has_a_tile_per_bcu_coloured_from_thresholds(models: dict[str, Model]) -> None:
    wall = models[WALL]
    for bcu in BCU_CODES:
        rate = _tile(wall, "RCRP deployment rate", bcu)
        assert f'bcu="{bcu}"' in rate["targets"][0]["expr"]
    assert _steps(_tile(wall, "RCRP deployment rate", "AW")) == [(None, "green"), (0.4, "red")]
    assert _steps(_tile(wall, "RCRP deployment rate", "NE")) == [(None, "green"), (0.35, "red")]
    # Counts alert when over the limit, so red starts one above it.
    assert _steps(_tile(wall, "I-grade open list", "CE")) == [(None, "green"), (31, "red")]
    assert _steps(_tile(wall, "I-grade open list", "NE")) == [(None, "green"), (26, "red")]
    assert _steps(_tile(wall, "s136 in custody", "WA")) == [
        (None, "green"),
        (3, "orange"),
        (6, "red"),
    ]


def test_wall_colours_move_with_the_thresholds_file() -> None:
    text = (ROOT / THRESHOLDS_FILE).read_text()
    text = text.replace(
        "CE:  # Central East\n", "CE:  # Central East\n    s136_in_custody: {amber: 1, red: 2}\n"
    )
    wall = dashboard_models(parse_thresholds(text))[WALL]
    assert _steps(_tile(wall, "s136 in custody", "CE")) == [
        (None, "green"),
        (1, "orange"),
        (2, "red"),
    ]
    assert _steps(_tile(wall, "s136 in custody", "NE"))[1] == (3, "orange")


def test_wall_compares_with_last_year_and_lists_alerts(models: dict[str, Model]) -> None:
    wall = models[WALL]
    variables = {v["name"]: v for v in wall["templating"]["list"]}
    assert variables["compare_source"]["current"]["value"] == "last-year"
    assert variables["source"]["current"]["value"] == "live"
    exprs = panel_exprs(wall)
    assert any('demand_rcrp_incidents{source="$compare_source"' in e for e in exprs)
    assert 'ALERTS{alertstate="firing"}' in exprs


def test_bcu_detail_has_a_bcu_variable(models: dict[str, Model]) -> None:
    detail = models[BCU_DETAIL]
    variables = {v["name"]: v for v in detail["templating"]["list"]}
    assert [o["value"] for o in variables["bcu"]["options"]] == list(BCU_CODES)
    # Every query is the selected BCU's, but for the source's weeks of baseline history.
    source_wide = 'demand_expected_basis{source="$source"}'
    assert all('bcu="$bcu"' in e for e in panel_exprs(detail) if e != source_wide)


def test_rcrp_evaluation_reads_the_whole_stream_of_five_categories(
    models: dict[str, Model],
) -> None:
    model = models[RCRP]
    assert [v["name"] for v in model["templating"]["list"]] == ["source"]
    for expr in panel_exprs(model):
        if "demand_rcrp" in expr:
            assert 'window="all"' in expr and 'source="$source"' in expr
            assert expr.count("category=~") == expr.count("demand_rcrp")
        assert "not_rcrp" not in expr
    [table] = [p for p in panels(model) if p["type"] == "table"]
    assert [t["refId"] for t in table["targets"]] == ["A", "B", "C"]
    assert all(t["format"] == "table" and t["instant"] for t in table["targets"])


def test_pipeline_health_covers_throughput_rejections_freshness_latency_up(
    models: dict[str, Model],
) -> None:
    joined = "\n".join(panel_exprs(models[PIPELINE]))
    for needle in [
        "rate(demand_events_applied_total",
        "sum by (source, reason) (rate(demand_events_rejected_total",
        "demand_stream_watermark_timestamp_seconds",
        "histogram_quantile(0.95, sum by (le, source_kind) "
        "(rate(demand_worker_event_latency_seconds_bucket",
        'up{job=~"demandmon-worker|demandmon-exporter"}',
        "max by (instance, partition) (demand_worker_partition_lag)",
        "deriv(demand_worker_partition_applied_offset[$__rate_interval])",
        "demand_worker_rewinds_total",
    ]:
        assert needle in joined


def test_pipeline_health_counter_stats_show_zero_before_the_first_increment(
    models: dict[str, Model],
) -> None:
    # The integration test runs every panel query and wants data; a labelled counter has
    # no series until its first increment, so the stat must fall back to 0.
    stats = {p["title"]: p for p in panels(models[PIPELINE]) if p["type"] == "stat"}
    for title, metric in [
        ("Dead letters lost", "demand_worker_deadletter_failures_total"),
        ("Redis rewinds", "demand_worker_rewinds_total"),
    ]:
        [target] = stats[title]["targets"]
        assert target["expr"] == f"sum({metric}) or vector(0)"


def test_json_files_parse_and_are_sorted(th: Thresholds) -> None:
    for rel in dashboard_files(th):
        text = (ROOT / rel).read_text()
        assert (
            json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
            == text
        )
