"""Expected demand on the dashboards: the band behind the hourly series, and a plain
"Above expected" / "As expected" status per BCU.

The exporter's baseline (docs/semantics.md) gives, per source, BCU and measure, the
expected count for the last 60 minutes with a band of expected -/+ 2 sigma, the actual
count over the same 60 minutes, and a score: how many sigmas above expected that is.
"Above expected" is a score over 2, which is the same as the count being above the band.
"""

from __future__ import annotations

from typing import Final

from grafana_foundation_sdk.builders import timeseries
from grafana_foundation_sdk.models import dashboard as dm

from demandmon.alerting import names as n
from demandmon.baseline.expected import BAND_SIGMAS
from demandmon.dashboards.bcu_map import value_texts
from demandmon.dashboards.common import steps, trend_panel

# A score above the band's half-width in sigmas is a count above the band's upper edge.
# The alert (DemandAboveExpected) asks more: per-BCU limits in thresholds.yaml, 30 min.
ABOVE_EXPECTED_SCORE: Final[float] = BAND_SIGMAS
MEASURE: Final[str] = n.ALL_INCIDENTS_MEASURE  # every incident created in the BCU

# What status() computes, and how a tile or a marker says it.
AS_EXPECTED, ABOVE_EXPECTED, NO_BASELINE = 0, 1, 2
STATUS_TEXTS: Final[dict[int, tuple[str, str]]] = {
    AS_EXPECTED: ("As expected", "green"),
    ABOVE_EXPECTED: ("Above expected", "red"),
    NO_BASELINE: ("No baseline yet", "gray"),
}
STATUS_COLOURS = steps((None, "green"), (ABOVE_EXPECTED, "red"), (NO_BASELINE, "gray"))

# Series names in the band panel; the fill between the band's edges refers to them.
LOW, HIGH, EXPECTED, ACTUAL = "expected, low", "expected, high", "expected", "last hour"


def status(source: str, bcu: str = "") -> str:
    """PromQL, per BCU (or for ``bcu`` alone): 1 where the last hour is above expected,
    0 where it is not, and 2 while the source has none of the previous 4 weeks (an empty
    baseline: no score means anything yet)."""
    where = f'source="{source}"'
    one_bcu = f',bcu="{bcu}"' if bcu else ""
    # max by: one series per source and BCU whatever job or instance scraped it.
    score = f"max by (source, bcu) ({n.EXPECTED_SCORE}{{{where}{one_bcu},{MEASURE}}})"
    weeks = f"max by (source) ({n.EXPECTED_BASIS}{{{where}}})"
    return (
        f"({score} > bool {ABOVE_EXPECTED_SCORE:g})\n"
        f"* on (source) group_left () ({weeks} > bool 0)\n"
        f"+ on (source) group_left () ({NO_BASELINE} * ({weeks} == bool 0))"
    )


def status_mappings() -> list[dm.ValueMapping]:
    return value_texts(STATUS_TEXTS)


def _fixed(colour: str) -> dm.DynamicConfigValue:
    return dm.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": colour})


def band_panel(
    title: str, selector: str, *, description: str = "", w: int = 12
) -> timeseries.Panel:
    """The last hour's count over time, drawn over the band expected for it (filled
    between the band's edges) and the expected line."""

    def series(metric: str, extra: str = ',period="60m"') -> str:
        return f"{metric}{{{selector},{MEASURE}{extra}}}"

    no_line = dm.DynamicConfigValue(id_val="custom.lineWidth", value=0)
    text = (
        "Incidents created in the hour up to each moment, against the same hours of "
        "the week over the previous 4 weeks: the dashed line is their mean, the shaded band "
        f"mean -/+ {ABOVE_EXPECTED_SCORE:g} sigma. Above the band is above expected."
    )
    panel = trend_panel(
        title,
        [
            (series("demand_expected_incidents_lower"), LOW),
            (series(n.EXPECTED_UPPER), HIGH),
            (series(n.EXPECTED_INCIDENTS), EXPECTED),
            (series(n.RECENT_INCIDENTS, ""), ACTUAL),
        ],
        description=f"{description} {text}".strip(),
        w=w,
        h=6,
    )
    band = [no_line, _fixed("blue")]
    return (
        panel.override_by_name(LOW, band)
        .override_by_name(
            HIGH,
            [
                *band,
                dm.DynamicConfigValue(id_val="custom.fillBelowTo", value=LOW),
                dm.DynamicConfigValue(id_val="custom.fillOpacity", value=20),
            ],
        )
        .override_by_name(
            EXPECTED,
            [
                _fixed("blue"),
                dm.DynamicConfigValue(
                    id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]}
                ),
            ],
        )
        .override_by_name(
            ACTUAL,
            [_fixed("orange"), dm.DynamicConfigValue(id_val="custom.lineWidth", value=2)],
        )
    )
