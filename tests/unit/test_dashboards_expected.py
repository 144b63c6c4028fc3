"""The dashboards' expected-demand, map and last-year panels: the BCU centres data and
its rule file, the geomaps on the wall and the RCRP evaluation, the expected band, the
"Above expected" tiles and the `offset 52w` row. test_dashboard_queries.py runs the map
and tile queries themselves."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from demandmon.alerting.thresholds import Thresholds
from demandmon.config.generate import generated_files
from demandmon.dashboards import dashboard_models
from demandmon.dashboards.bcu_map import (
    BCU_CENTRE,
    CENTRES_RULE_FILE,
    bcu_centres,
    centres_document,
)
from demandmon.dashboards.colours import DETAIL_UID
from demandmon.dashboards.common import panels
from schemas.vocabulary import BCU_CODES

ROOT = Path(__file__).resolve().parents[2]
WALL = "grafana/dashboards/control-room-wall.json"
BCU_DETAIL = "grafana/dashboards/bcu-detail.json"
RCRP = "grafana/dashboards/rcrp-evaluation.json"
JOIN = f"* on (bcu) group_left (latitude, longitude) {BCU_CENTRE}"
needs_promtool = pytest.mark.skipif(not shutil.which("promtool"), reason="promtool not found")

Model = dict[str, Any]


@pytest.fixture(scope="module")
def models(th: Thresholds) -> dict[str, Model]:
    return dashboard_models(th)


def _row(model: Model, title: str) -> list[Model]:
    """The panels under the row titled ``title``, in order."""
    out: list[Model] = []
    inside = False
    for panel in model["panels"]:
        if panel["type"] == "row":
            inside = panel["title"] == title
        elif inside:
            out.append(panel)
    return out


# -- the BCU centres -----------------------------------------------------------------------


def test_centres_are_data_with_their_source_for_all_twelve_bcus() -> None:
    doc = centres_document()
    assert "Wikipedia" in doc["source"] and "mean" in doc["source"]
    members = [b for bcu in BCU_CODES for b in doc["bcus"][bcu]]
    assert sorted(members) == sorted(doc["boroughs"])  # every borough in one BCU, once
    centres = bcu_centres()
    assert list(centres) == list(BCU_CODES)
    for bcu, (lat, lon) in centres.items():
        assert 51.2 <= lat <= 51.8 and -0.6 <= lon <= 0.4, bcu
    # By hand: Lambeth (51.4607, -0.1163) and Southwark (51.5035, -0.0804).
    assert centres["AS"] == (51.48, -0.10)
    # Havering, Redbridge, Barking and Dagenham: East is east of Central West.
    assert centres["EA"] == (51.57, 0.14)
    assert centres["EA"][1] > centres["CE"][1] > centres["AW"][1] > centres["WA"][1]


def test_centres_rule_file_is_generated_and_valid(th: Thresholds, tmp_path: Path) -> None:
    text = generated_files(th)[CENTRES_RULE_FILE]
    assert (ROOT / CENTRES_RULE_FILE).read_text() == text
    [group] = yaml.safe_load(text)["groups"]
    labels = {r["labels"]["bcu"]: r["labels"] for r in group["rules"]}
    assert all(r["record"] == BCU_CENTRE and r["expr"] == "vector(1)" for r in group["rules"])
    for bcu, (lat, lon) in bcu_centres().items():
        assert (labels[bcu]["latitude"], labels[bcu]["longitude"]) == (f"{lat:.2f}", f"{lon:.2f}")
    if shutil.which("promtool"):
        path = tmp_path / "centres.yml"
        path.write_text(text)
        result = subprocess.run(
            ["promtool", "check", "rules", str(path)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr


# -- the maps -------------------------------------------------------------------------------


def _maps(model: Model) -> list[Model]:
    return [p for p in panels(model) if p["type"] == "geomap"]


def test_the_wall_and_the_evaluation_have_bcu_maps(models: dict[str, Model]) -> None:
    wall, evaluation = _maps(models[WALL]), _maps(models[RCRP])
    assert [m["title"] for m in wall] == [
        "RCRP deployment rate, last 24h, against target",
        "Open I-grade unattended past 15 min",
        "Last hour against expected",
    ]
    assert [m["title"] for m in evaluation] == [
        "RCRP deployment rate by BCU, whole stream of $source"
    ]
    for panel in wall + evaluation:
        [target] = panel["targets"]
        assert target["instant"] and target["format"] == "table"
        assert JOIN in target["expr"]
        [layer] = panel["options"]["layers"]
        assert layer["type"] == "markers"
        assert layer["location"] == {
            "mode": "coords",
            "latitude": "latitude",
            "longitude": "longitude",
        }
        assert layer["config"]["style"]["color"]["field"] == "Value"
        assert layer["config"]["style"]["text"]["field"] == "bcu"
        [convert] = panel["transformations"]
        assert convert["id"] == "convertFieldType"
        assert {c["targetField"] for c in convert["options"]["conversions"]} == {
            "latitude",
            "longitude",
        }
        [link] = panel["fieldConfig"]["defaults"]["links"]
        assert link["url"].startswith(f"/d/{DETAIL_UID}/")
        assert "var-bcu=${__data.fields.bcu}" in link["url"]


# -- expected against actual ------------------------------------------------------------------


def test_the_wall_has_an_above_expected_tile_per_bcu(models: dict[str, Model]) -> None:
    tiles = _row(models[WALL], "Last hour against expected")
    assert [t["title"] for t in tiles] == list(BCU_CODES)
    for bcu, tile in zip(BCU_CODES, tiles, strict=True):
        [target] = tile["targets"]
        assert f'bcu="{bcu}",measure="incidents"' in target["expr"]
        [mapping] = tile["fieldConfig"]["defaults"]["mappings"]
        texts = {v["text"] for v in mapping["options"].values()}
        assert texts == {"As expected", "Above expected", "No baseline yet"}
        assert f"var-bcu={bcu}&" in tile["links"][0]["url"]


def _band_checks(panel: Model, bcu: str) -> None:
    legends = [t["legendFormat"] for t in panel["targets"]]
    assert legends == ["expected, low", "expected, high", "expected", "last hour"]
    exprs = [t["expr"] for t in panel["targets"]]
    assert [e.split("{")[0] for e in exprs] == [
        "demand_expected_incidents_lower",
        "demand_expected_incidents_upper",
        "demand_expected_incidents",
        "demand_recent_incidents",
    ]
    assert all(f'bcu="{bcu}",measure="incidents"' in e for e in exprs)
    assert all('period="60m"' in e for e in exprs[:3])
    overrides = {
        o["matcher"]["options"]: o["properties"] for o in panel["fieldConfig"]["overrides"]
    }
    high = {p["id"]: p["value"] for p in overrides["expected, high"]}
    assert high["custom.fillBelowTo"] == "expected, low"  # the band: filled between edges
    assert high["custom.lineWidth"] == 0


def test_band_behind_the_hourly_series_on_the_wall_and_bcu_detail(
    models: dict[str, Model],
) -> None:
    bands = _row(models[WALL], "Incidents in the last hour against the expected band")
    assert len(bands) == len(BCU_CODES)
    for bcu, band in zip(BCU_CODES, bands, strict=True):
        assert band["type"] == "timeseries" and band["title"].startswith(bcu)
        _band_checks(band, bcu)
    detail = _row(models[BCU_DETAIL], "$bcu: against expected")
    [band] = [p for p in detail if p["type"] == "timeseries"]
    _band_checks(band, "$bcu")
    [next_day] = [p for p in detail if p["title"] == "Expected next 24h"]
    assert all('period="next_24h"' in t["expr"] for t in next_day["targets"])
    assert [t["legendFormat"] for t in next_day["targets"]] == ["low", "expected", "high"]


# -- last year ------------------------------------------------------------------------------


def test_last_year_reads_raw_series_52_weeks_back(models: dict[str, Model]) -> None:
    row = _row(models[WALL], "London against the same period last year")
    assert len(row) == 3
    for panel in row:
        this_year, last_year = (t["expr"] for t in panel["targets"])
        assert 'source="$source"' in this_year and "offset" not in this_year
        assert "$compare_source" in last_year and "$source" not in last_year
        # Every selector of last year carries the offset; no recording rule (a:b:c) is
        # read, as Prometheus does not evaluate rules over backfilled history.
        assert last_year.count("offset 52w") == last_year.count("{source=")
        assert ":" not in last_year.replace("offset 52w", "")
        assert "demandmon backfill" in panel["description"]
