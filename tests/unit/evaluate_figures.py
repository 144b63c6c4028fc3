"""Source figures as Redis holds them (counter fields by name), for the evaluate tests."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from demandmon.state.reader import SourceFigures
from demandmon.state.record import MS_PER_HOUR, counter_field

# The demo's two months (README): (incidents, deployed) per RCRP category.
ROWS_2022 = {
    "concern_for_safety": (15968, 7912),
    "mental_health": (9610, 1895),
    "vulnerable": (4483, 2425),
    "collapse_illness_injury_trapped": (3044, 942),
    "welfare_check_partner": (275, 131),
}
ROWS_2023 = {
    "concern_for_safety": (12196, 3651),
    "mental_health": (9262, 1168),
    "vulnerable": (4331, 2074),
    "collapse_illness_injury_trapped": (1970, 369),
    "welfare_check_partner": (113, 48),
}


@dataclass(frozen=True)
class Extra:
    """Figures beyond the category table (whole stream), with round values."""

    officer_ms: int = 0
    graded_i: int = 40
    graded_s: int = 0
    within_i: int = 0
    within_s: int = 0
    open_i: int = 0
    open_u: int = 0
    detentions: int = 3
    detention_ms: int = 3 * MS_PER_HOUR
    s136_officer_ms: int = 0


def figures(source: str, rows: dict[str, tuple[int, int]], extra: Extra = Extra()) -> SourceFigures:
    totals: Counter[str] = Counter()
    for cat, (incidents, deployed) in rows.items():
        # Spread over two BCUs to check the sums.
        totals[counter_field("incidents", "SE", cat)] += incidents - incidents // 2
        totals[counter_field("incidents", "AW", cat)] += incidents // 2
        totals[counter_field("deployed", "SE", cat)] += deployed
    totals[counter_field("incidents", "SE", "not_rcrp")] = 1000  # never in the RCRP table
    totals[counter_field("deployed", "SE", "not_rcrp")] = 900
    totals[counter_field("officer_ms", "SE", "mental_health")] = extra.officer_ms
    totals[counter_field("officer_ms", "SE", "not_rcrp")] = 99 * MS_PER_HOUR  # not RCRP's
    totals[counter_field("graded", "SE", "I")] = extra.graded_i
    totals[counter_field("graded", "AW", "S")] = extra.graded_s
    totals[counter_field("attended_within_target", "SE", "I")] = extra.within_i
    totals[counter_field("attended_within_target", "AW", "S")] = extra.within_s
    totals[counter_field("s136_detentions", "AW")] = extra.detentions
    totals[counter_field("s136_handovers_over_target", "AW")] = 1
    totals[counter_field("s136_detention_ms", "AW")] = extra.detention_ms
    totals[counter_field("s136_officer_ms", "AW")] = extra.s136_officer_ms
    fig = SourceFigures(source, 1701215999.0, 1701215999.0, None, windows={"all": totals})
    fig.now[counter_field("open", "SE", "I")] = extra.open_i
    fig.now[counter_field("open", "NW", "U")] = extra.open_u
    fig.meta.update({"applied": 10, "duplicate": 2, "rej:malformed_json": 1, "rej:too_late": 4})
    fig.first_created_s = 1698796800.0  # 2023-11-01T00:00Z
    fig.last_created_s = 1701215999.0  # 2023-11-28T23:59:59Z
    return fig


# Round figures for the two months: each is easy to work out by hand.
EXTRA_2022 = Extra(
    officer_ms=77_000 * MS_PER_HOUR,
    graded_i=50_000,
    graded_s=40_000,
    within_i=45_000,  # 90.0%
    within_s=30_000,  # 75.0%
    open_i=300,
    open_u=100,
    detentions=800,
    detention_ms=6_400 * MS_PER_HOUR,  # 8 h each
    s136_officer_ms=17_600 * MS_PER_HOUR,  # 22 h each
)
EXTRA_2023 = Extra(
    officer_ms=42_000 * MS_PER_HOUR,
    graded_i=40_700,
    graded_s=30_000,
    within_i=37_444,  # 92.0%
    within_s=24_000,  # 80.0%
    open_i=250,
    open_u=70,
    detentions=600,
    detention_ms=3_900 * MS_PER_HOUR,  # 6.5 h each
    s136_officer_ms=11_400 * MS_PER_HOUR,  # 19 h each
)
