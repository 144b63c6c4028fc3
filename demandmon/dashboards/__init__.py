"""Grafana dashboards as code, generated from deploy/thresholds.yaml.

`dashboard_models` builds each dashboard's JSON model (pure); `demandmon config generate`
writes them to grafana/dashboards/, where Grafana's file provisioning picks them up.
"""

from __future__ import annotations

from typing import Any

from demandmon.alerting.thresholds import Thresholds
from demandmon.dashboards import bcu_detail, pipeline_health, rcrp_evaluation, wall
from demandmon.dashboards.common import panel_exprs, panel_queries, to_dict, to_json

__all__ = ["dashboard_files", "dashboard_models", "panel_exprs", "panel_queries"]


def dashboard_models(th: Thresholds) -> dict[str, dict[str, Any]]:
    """Repository-relative path -> dashboard JSON model."""
    return {
        wall.FILE: to_dict(wall.wall(th)),
        bcu_detail.FILE: to_dict(bcu_detail.bcu_detail(th)),
        rcrp_evaluation.FILE: to_dict(rcrp_evaluation.rcrp_evaluation()),
        pipeline_health.FILE: to_dict(pipeline_health.pipeline_health(th)),
    }


def dashboard_files(th: Thresholds) -> dict[str, str]:
    return {path: to_json(model) for path, model in dashboard_models(th).items()}
