"""Steady demand: incidents placed by quota over (hour, BCU) cells instead of drawn at random.

A random draw gives Poisson noise: over 12 BCUs some BCU's last hour is always a couple of
sigmas from its mean, so a stream meant to show one anomaly would show others by chance.
Here each cell gets its share of the profile's incidents (London total x the hour's weight
on the daily/weekly curve x the BCU's weight), rounded down or up: the seed decides which
cells round up (weighted by the remainder) and how the cells are dealt to incidents. Every
cell is within one incident of its share, and the same hour of the week has the same share
every week (curves.hour_weight is local time; a profile that uses this avoids a clock
change), so an hour's count never differs from its 4-week mean by 2 or more.
"""

from __future__ import annotations

import math
from random import Random

from streams.generate.curves import BCU_WEIGHTS, BCUS, hour_weight

Cell = tuple[int, str]  # (hour from the profile start, BCU)


def cell_shares(start: int, hours: int, incidents: int) -> dict[Cell, float]:
    """Each cell's exact (fractional) share of ``incidents``."""
    weights = [hour_weight(start + h * 3600) for h in range(hours)]
    per_hour = incidents / sum(weights)
    bcu_total = sum(BCU_WEIGHTS.values())
    return {
        (h, bcu): per_hour * w * BCU_WEIGHTS[bcu] / bcu_total
        for h, w in enumerate(weights)
        for bcu in BCUS
    }


def cell_counts(shares: dict[Cell, float], rng: Random) -> dict[Cell, int]:
    """Whole counts summing exactly to the shares' total, each the share rounded down or
    up; cells round up with probability growing with their remainder."""
    counts = {cell: math.floor(share) for cell, share in shares.items()}
    need = round(sum(shares.values())) - sum(counts.values())
    remainders = [(cell, share - counts[cell]) for cell, share in shares.items()]
    # Efraimidis-Spirakis keys: exactly `need` cells without replacement, by weight.
    keyed = sorted(
        ((rng.random() ** (1.0 / rem), n) for n, (_, rem) in enumerate(remainders) if rem > 0),
        reverse=True,
    )
    for _, n in keyed[:need]:
        counts[remainders[n][0]] += 1
    return counts


def steady_slots(start: int, hours: int, incidents: int, rng: Random) -> list[Cell]:
    """``incidents`` cells, one per incident, in a seeded random order (so categories and
    deployments spread evenly over hours and BCUs)."""
    counts = cell_counts(cell_shares(start, hours, incidents), rng)
    slots = [cell for cell, count in sorted(counts.items()) for _ in range(count)]
    rng.shuffle(slots)
    return slots
