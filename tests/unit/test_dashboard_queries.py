"""The map and tile queries run by promtool's own PromQL engine on hand-made series, so
the statuses they compute are checked, not only their text: each BCU against its own
deployment-rate limit, "Above expected" as a score over 2, "No baseline yet" for a source
with no previous week."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from demandmon.alerting.thresholds import Thresholds
from demandmon.dashboards import dashboard_models, panel_queries
from demandmon.dashboards.bcu_map import BCU_CENTRE, bcu_centres
from demandmon.dashboards.common import panels
from schemas.vocabulary import BCU_CODES

ROOT = Path(__file__).resolve().parents[2]
WALL = "grafana/dashboards/control-room-wall.json"
pytestmark = pytest.mark.skipif(not shutil.which("promtool"), reason="promtool not found")

Model = dict[str, Any]


@pytest.fixture(scope="module")
def wall(th: Thresholds) -> Model:
    return dashboard_models(th)[WALL]


def _map(wall: Model, words: str) -> Model:
    [panel] = [p for p in panels(wall) if p["type"] == "geomap" and words in p["title"]]
    return panel


def _promtool(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *argv], capture_output=True, text=True, check=False)


def _centre_series() -> list[dict[str, str]]:
    return [
        {
            "series": f'{BCU_CENTRE}{{bcu="{bcu}",latitude="{lat:.2f}",longitude="{lon:.2f}"}}',
            "values": "1x5",
        }
        for bcu, (lat, lon) in bcu_centres().items()
    ]


def _run_promql_tests(tmp_path: Path, series: list[dict[str, str]], tests: list[Model]) -> None:
    """promtool evaluates each expression on ``series`` and compares every sample."""
    doc = {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": tests}],
    }
    path = tmp_path / "queries_test.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = _promtool("test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def _centre(bcu: str) -> str:
    lat, lon = bcu_centres()[bcu]
    return f'bcu="{bcu}",latitude="{lat:.2f}",longitude="{lon:.2f}"'


def test_the_rate_map_reds_each_bcu_above_its_own_limit(
    wall: Model, th: Thresholds, tmp_path: Path
) -> None:
    [expr] = panel_queries({"panels": [_map(wall, "deployment rate")]}, {"source": "s"})
    # AW's limit is its own (thresholds.yaml); AS and NE have the London default.
    aw, default = (th.for_bcu(b).rcrp_deployment_rate.max_share for b in ("AW", "AS"))
    assert aw > default
    between = (aw + default) / 2
    rate = "bcu:demand_rcrp_deployment_rate:ratio24h"
    series = [
        {"series": f'{rate}{{source="s",bcu="AW"}}', "values": f"{between}x5"},
        {"series": f'{rate}{{source="s",bcu="AS"}}', "values": f"{between}x5"},
        {"series": f'{rate}{{source="s",bcu="NE"}}', "values": f"{default}x5"},  # not above
        {"series": f'{rate}{{source="other",bcu="CE"}}', "values": "0.99x5"},
        *_centre_series(),
    ]
    src = 'source="s",'
    expected = [{"labels": f"{{{src}{_centre('AW')}}}", "value": 0}]
    expected += [{"labels": f"{{{src}{_centre('AS')}}}", "value": 1}]
    expected += [{"labels": f"{{{src}{_centre('NE')}}}", "value": 0}]
    # No rate (no RCRP incidents in 24h): still on the map, as "no data".
    expected += [
        {"labels": f"{{{_centre(b)}}}", "value": -1}
        for b in BCU_CODES
        if b not in ("AW", "AS", "NE")
    ]
    test = {"expr": expr, "eval_time": "2m", "exp_samples": expected}
    _run_promql_tests(tmp_path, series, [test])


def test_above_expected_is_a_score_over_two_and_no_history_says_so(
    wall: Model, tmp_path: Path
) -> None:
    """The wall's AW tile and the expected map, on hand-made scores: 2.5 sigmas is above
    expected, exactly 2 is not (it is the band's edge), and a source with no previous
    week says "No baseline yet" (2) whatever its score."""
    [aw_tile] = [p for p in panels(wall) if p["title"] == "AW" and "expected_score" in str(p)]
    [tile] = panel_queries({"panels": [aw_tile]}, {"source": "s"})
    expected_map = _map(wall, "against expected")
    [map_new] = panel_queries({"panels": [expected_map]}, {"source": "new"})
    [map_s] = panel_queries({"panels": [expected_map]}, {"source": "s"})
    exporter = 'job="demandmon-exporter",instance="exporter:9464"'

    def score(source: str, bcu: str, value: float, measure: str = "incidents") -> dict[str, str]:
        return {
            "series": f'demand_expected_score{{{exporter},source="{source}",bcu="{bcu}",'
            f'measure="{measure}"}}',
            "values": f"{value}x5",
        }

    series = [
        score("s", "AW", 2.5),
        score("s", "AW", 9, "mental_health"),  # another measure: not the tile's
        score("s", "AS", 2),
        score("new", "AW", 5),
        {"series": f'demand_expected_basis{{{exporter},source="s"}}', "values": "4x5"},
        {"series": f'demand_expected_basis{{{exporter},source="new"}}', "values": "0x5"},
        *_centre_series(),
    ]
    tests = [
        {
            "expr": tile,
            "eval_time": "2m",
            "exp_samples": [{"labels": '{source="s",bcu="AW"}', "value": 1}],
        },
        {
            "expr": map_s,
            "eval_time": "2m",
            "exp_samples": [
                {"labels": f'{{source="s",{_centre("AW")}}}', "value": 1},
                {"labels": f'{{source="s",{_centre("AS")}}}', "value": 0},
            ],
        },
        {
            "expr": map_new,
            "eval_time": "2m",
            "exp_samples": [{"labels": f'{{source="new",{_centre("AW")}}}', "value": 2}],
        },
    ]
    _run_promql_tests(tmp_path, series, tests)
