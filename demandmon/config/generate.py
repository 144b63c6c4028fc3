"""Everything `demandmon config generate` writes, as path -> text (pure, no I/O)."""

from __future__ import annotations

from demandmon.alerting.alertmanager import (
    COMPOSE_HTTP_CONFIG,
    COMPOSE_WEBHOOK_URL,
    TEMPLATE_FILE,
    alertmanager_template,
    render_alertmanager,
)
from demandmon.alerting.rules import rule_files
from demandmon.alerting.thresholds import Thresholds
from demandmon.dashboards import bcu_map, dashboard_files

# docker-compose.yml mounts this one; the exporter's /alerts receiver logs deliveries.
COMPOSE_ALERTMANAGER_FILE = "deploy/alertmanager/alertmanager.compose.yml"


def generated_files(th: Thresholds) -> dict[str, str]:
    """Repository-relative path -> exact content, sorted by path for stable output."""
    files = {
        **rule_files(th),
        **bcu_map.rule_files(),  # the BCU centres the dashboards' maps join on
        TEMPLATE_FILE: alertmanager_template(),
        COMPOSE_ALERTMANAGER_FILE: render_alertmanager(COMPOSE_WEBHOOK_URL, COMPOSE_HTTP_CONFIG),
        **dashboard_files(th),
    }
    return dict(sorted(files.items()))
