"""Where and when demand happens: BCU weights and the daily/weekly curve."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import accumulate
from typing import Final

from streams.generate.profiles import LONDON

# Share of London demand per BCU: 2021 census population (thousands) of the BCU's
# boroughs; Central West is lifted by the West End's night-time and visitor population.
BCU_WEIGHTS: Final[dict[str, int]] = {
    "AW": 690,  # Westminster, Kensington & Chelsea, Hammersmith & Fulham (532k + West End)
    "AS": 624,  # Lambeth, Southwark
    "CE": 570,  # Hackney, Tower Hamlets
    "CN": 427,  # Camden, Islington
    "EA": 791,  # Havering, Redbridge, Barking & Dagenham
    "NA": 594,  # Enfield, Haringey
    "NE": 630,  # Newham, Waltham Forest
    "NW": 989,  # Barnet, Brent, Harrow
    "SE": 865,  # Bexley, Bromley, Greenwich
    "SN": 600,  # Croydon, Sutton
    "SW": 906,  # Kingston, Richmond, Merton, Wandsworth
    "WA": 961,  # Ealing, Hillingdon, Hounslow
}
BCUS: Final[tuple[str, ...]] = tuple(BCU_WEIGHTS)

# Neighbouring BCUs (a resource from next door may report with its own BCU).
NEIGHBOURS: Final[dict[str, str]] = {
    "AW": "WA",
    "AS": "SW",
    "CE": "NE",
    "CN": "NA",
    "EA": "NE",
    "NA": "CN",
    "NE": "CE",
    "NW": "WA",
    "SE": "AS",
    "SN": "SW",
    "SW": "SN",
    "WA": "NW",
}

# Relative calls per local hour of a weekday: quiet before dawn, climbing through the day,
# peaking in the evening (18-20h).
DAILY: Final[tuple[float, ...]] = (
    3.0, 2.4, 1.9, 1.5, 1.2, 1.1, 1.4, 2.2, 3.0, 3.5, 3.8, 4.0,
    4.2, 4.3, 4.4, 4.6, 5.0, 5.4, 5.7, 5.8, 5.6, 5.2, 4.6, 3.8,
)  # fmt: skip
# Saturday and Sunday early hours (the night out before) are much busier.
WEEKEND_NIGHT: Final[tuple[float, ...]] = (1.7, 1.8, 1.8, 1.6, 1.4, 1.2)
FRIDAY, SATURDAY, SUNDAY = 4, 5, 6


def hour_weight(hour_start: int) -> float:
    """Relative demand in the hour starting at ``hour_start`` (epoch s), by London time."""
    local = datetime.fromtimestamp(hour_start, tz=UTC).astimezone(LONDON)
    weight = DAILY[local.hour]
    weekday = local.weekday()
    if weekday in (SATURDAY, SUNDAY) and local.hour < len(WEEKEND_NIGHT):
        weight *= WEEKEND_NIGHT[local.hour]
    if weekday in (FRIDAY, SATURDAY) and local.hour >= 20:
        weight *= 1.15
    return weight


def hour_cum_weights(start: int, hours: int) -> list[float]:
    """Cumulative weights of the ``hours`` hours from ``start`` (for random.choices)."""
    return list(accumulate(hour_weight(start + h * 3600) for h in range(hours)))
