"""The wall's maps of the 12 BCUs: deployment rate against each BCU's own limit, open
I-grade past target, and the last hour against expected (bcu_map.py draws them)."""

from __future__ import annotations

from demandmon.alerting import names as n
from demandmon.alerting.promql import number
from demandmon.alerting.thresholds import Thresholds
from demandmon.dashboards import expected
from demandmon.dashboards.bcu_map import BCU_CENTRE, bcu_map, value_texts, with_centres
from demandmon.dashboards.common import PanelBuilder, steps
from schemas.vocabulary import BCU_CODES


def _rate_status(th: Thresholds) -> str:
    """1 where a BCU's 24h RCRP deployment rate is above its own limit, else 0; the
    BCUs sharing a limit share a term."""
    by_limit: dict[float, list[str]] = {}
    for bcu in BCU_CODES:
        by_limit.setdefault(th.for_bcu(bcu).rcrp_deployment_rate.max_share, []).append(bcu)
    return "\nor\n".join(
        f'({n.BCU_RCRP_RATE}{{source="$source",bcu=~"{"|".join(bcus)}"}} > bool {number(limit)})'
        for limit, bcus in by_limit.items()
    )


NO_RATE = -1  # a BCU with no RCRP incidents in 24h has no rate: a grey marker


def wall_maps(th: Thresholds) -> list[PanelBuilder]:
    rate = f"{with_centres(_rate_status(th))}\nor on (bcu) ({BCU_CENTRE} * {NO_RATE})"
    past_target = 'sum by (bcu) (demand_open_incidents_past_target{source="$source",grade="I"})'
    return [
        bcu_map(
            "RCRP deployment rate, last 24h, against target",
            rate,
            description="Red: the BCU's deployment rate is above its limit in "
            "deploy/thresholds.yaml, as its wall tile shows.",
            thresholds=steps((None, "green"), (1, "red")),
            mappings=value_texts(
                {
                    NO_RATE: ("No RCRP incidents", "gray"),
                    0: ("Within target", "green"),
                    1: ("Above target", "red"),
                }
            ),
        ),
        bcu_map(
            f"Open I-grade unattended past {n.I_TARGET_MIN} min",
            with_centres(past_target),
            description=f"Open I-grade incidents no resource has reached within "
            f"{n.I_TARGET_MIN} minutes. Red from one.",
            thresholds=steps((None, "green"), (1, "red")),
        ),
        bcu_map(
            "Last hour against expected",
            with_centres(expected.status("$source")),
            description="Red: more incidents in the last hour than the same hour of the week "
            "over the previous 4 weeks makes expected (above the band).",
            thresholds=expected.STATUS_COLOURS,
            mappings=expected.status_mappings(),
        ),
    ]
