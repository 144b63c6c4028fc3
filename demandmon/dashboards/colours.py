"""Tile colours from deploy/thresholds.yaml, shared by the wall and BCU detail, and the
drill-down link from a wall tile to its BCU.

Red starts exactly where the alert condition starts: counts are integers, so "more than
25" is red from 26; ages and shares are compared as the alert compares them.
"""

from __future__ import annotations

from collections.abc import Callable

from grafana_foundation_sdk.builders import dashboard as db

from demandmon.alerting.thresholds import BcuThresholds, Thresholds
from demandmon.dashboards.common import steps
from schemas.vocabulary import BCU_CODES

DETAIL_UID = "demandmon-bcu-detail"
Colours = Callable[[BcuThresholds], db.ThresholdsConfig]


def rcrp_rate(t: BcuThresholds) -> db.ThresholdsConfig:
    return steps((None, "green"), (t.rcrp_deployment_rate.max_share, "red"))


def open_list(t: BcuThresholds) -> db.ThresholdsConfig:
    return steps((None, "green"), (t.igrade_open_list.max_open + 1, "red"))


def custody(t: BcuThresholds) -> db.ThresholdsConfig:
    c = t.s136_in_custody
    return steps((None, "green"), (c.amber, "orange"), (c.red, "red"))


def oldest_unattended(t: BcuThresholds) -> db.ThresholdsConfig:
    # The alert fires above max_age_seconds; ages are fractional, so red from just above.
    return steps((None, "green"), (t.oldest_open_igrade.max_age_seconds + 1, "red"))


def igrade_attended(t: BcuThresholds) -> db.ThresholdsConfig:
    return steps((None, "red"), (t.igrade_attended_within_target.min_share, "green"))


def sgrade_attended(t: BcuThresholds) -> db.ThresholdsConfig:
    return steps((None, "red"), (t.sgrade_attended_within_target.min_share, "green"))


def by_bcu(th: Thresholds, colours: Colours) -> dict[str, db.ThresholdsConfig]:
    return {bcu: colours(th.for_bcu(bcu)) for bcu in BCU_CODES}


def detail_url(bcu: str) -> str:
    """BCU detail with ``bcu`` selected, the wall's source and time range kept."""
    return f"/d/{DETAIL_UID}/bcu-detail?var-source=${{source}}&var-bcu={bcu}&${{__url_time_range}}"
