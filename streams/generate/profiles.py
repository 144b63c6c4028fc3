"""Generator profiles, as data.

A profile fixes what must come out exactly (incidents and deployments per RCRP category,
I-grade incidents, s136 detentions, incidents left open at the end) and the period; the seed
only decides where and when things happen. The RCRP briefing figures:

* ``met-nov-2022`` / ``met-nov-2023``: all RCRP incidents 33,380 (13,305 deployed) and
  27,872 (7,310 deployed). The briefing gives only the totals, so they are split over the
  five categories in proportion to the category table (largest remainder).
* ``categories-2022`` / ``categories-2023``: the category table of the design brief, to
  the unit.
* ``surge``: four weeks and a day of steady demand, then one BCU (NE) at about four times
  its usual demand for the last three hours: the expected-demand anomaly alert fires for
  NE and only for NE.
* 2023 has exactly ``round(0.814 * N2022)`` I-grade incidents and open incidents at the
  end (18.6% fewer) and 205 fewer s136 detentions than 2022.
* s136 officer time, against the briefing's "200+ fewer s136 detentions equating to 4,500+
  officer hours per month" (about 22.5 officer hours a detention): the unit times of an
  s136 incident (streams/generate/lifecycle.py) give officers x (cleared - assigned) of
  about 22 h a detention in 2022 and 19 h in 2023, where more handovers are quick. A
  plain recount of the generated files (seed 20231101, the demo's): 640 detentions,
  14,073.8 officer hours (22.0 a detention) and 435, 8,381.5 h (19.3): 5,692 hours saved
  by 205 fewer detentions (seeds 1 and 3: 5,577 and 5,758 h). The unit times were not
  tuned for this: they already matched the briefing, and tests/unit/test_generate.py and
  tests/integration/test_s136_officer_time.py hold them to 15-30 h a detention and more
  than 4,500 hours saved.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final
from zoneinfo import ZoneInfo

# The categories' ids are the vocabulary's; the figures per category are the profiles' own.
from schemas.vocabulary import COLLAPSE_ILLNESS_INJURY_TRAPPED as CIIT
from schemas.vocabulary import CONCERN_FOR_SAFETY as CFS
from schemas.vocabulary import MENTAL_HEALTH as MH
from schemas.vocabulary import NOT_RCRP
from schemas.vocabulary import VULNERABLE as VULN
from schemas.vocabulary import WELFARE_CHECK_PARTNER as WCP

LONDON: Final = ZoneInfo("Europe/London")

IGRADE_RATIO_2023: Final = 0.814


@dataclass(frozen=True)
class Block:
    """``incidents`` incidents whose final category is ``category``, ``deployed`` of them
    with at least one resource assigned. ``bcu`` None: drawn by the BCU weights. ``span``:
    creation hours (from, to) relative to the profile start; None: the whole period along
    the daily/weekly curve."""

    category: str
    incidents: int
    deployed: int
    bcu: str | None = None
    span: tuple[int, int] | None = None


@dataclass(frozen=True)
class Profile:
    name: str
    start: int  # epoch seconds (UTC) of the first hour
    hours: int  # creation period length
    tail_s: int  # events may run this long after the period end (then nothing)
    blocks: tuple[Block, ...]
    igrade: int  # incidents whose final grade is I
    s136: int  # s136 detentions
    open_at_end: int  # incidents neither closed nor cancelled at the end
    quick_handover_share: float  # share of s136 handovers within 60 minutes
    s136_bcu: str | None = None  # s136 only in this BCU (None: anywhere)
    s136_waits_min: tuple[int, ...] = ()  # fixed handover waits (minutes), else drawn
    s136_lead_s: int = 0  # s136 only on incidents created this long before the cutoff
    on_time_share: float = 0.86  # I/S first attended within target
    igrade_deployed_share: float = 0.92  # of I-grade incidents, the share deployed
    regrade_share: float = 0.08
    reclass_share: float = 0.07
    # Final grade of incidents never deployed: cumulative weights of S, E, R.
    undeployed_grades: tuple[int, int, int] = (15, 60, 100)
    # Blocks with neither bcu nor span placed by quota over hours and BCUs (steady.py),
    # not drawn at random: demand with no chance anomalies.
    steady: bool = False

    @property
    def end(self) -> int:
        return self.start + self.hours * 3600

    @property
    def cutoff(self) -> int:
        """The latest event time: one second before the period end (plus the tail)."""
        return self.end + self.tail_s - 1

    @property
    def incidents(self) -> int:
        return sum(b.incidents for b in self.blocks)


def london_midnight(year: int, month: int, day: int) -> int:
    return int(datetime(year, month, day, tzinfo=LONDON).timestamp())


def utc(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def _blocks(rcrp: dict[str, tuple[int, int]], other: tuple[int, int]) -> tuple[Block, ...]:
    rows = [Block(cat, inc, dep) for cat, (inc, dep) in rcrp.items()]
    return (*rows, Block(NOT_RCRP, other[0], other[1]))


NOV_HOURS: Final = 28 * 24

# met-nov: the briefing totals split in proportion to the category table.
MET_NOV_2022: Final = {
    CFS: (15968, 7912),
    MH: (9610, 1895),
    VULN: (4483, 2425),
    CIIT: (3044, 942),
    WCP: (275, 131),
}
MET_NOV_2023: Final = {
    CFS: (12196, 3651),
    MH: (9262, 1168),
    VULN: (4331, 2074),
    CIIT: (1970, 369),
    WCP: (113, 48),
}
# categories: the design brief's category table, to the unit.
CATEGORIES_2022: Final = {
    CFS: (4292, 2284),
    MH: (2583, 547),
    VULN: (1205, 700),
    CIIT: (818, 272),
    WCP: (74, 38),
}
CATEGORIES_2023: Final = {
    CFS: (3126, 919),
    MH: (2374, 294),
    VULN: (1110, 522),
    CIIT: (505, 93),
    WCP: (29, 12),
}

MET_IGRADE_2022: Final = 18000
MET_OPEN_2022: Final = 350
CAT_IGRADE_2022: Final = 6000
CAT_OPEN_2022: Final = 120
S136_2022: Final = 640
S136_2023: Final = 435


def _nov(
    name: str,
    year: int,
    rcrp: dict[str, tuple[int, int]],
    other: tuple[int, int],
    igrade_2022: int,
    open_2022: int,
) -> Profile:
    later = year == 2023
    return Profile(
        name=name,
        start=london_midnight(year, 11, 1),
        hours=NOV_HOURS,
        tail_s=0,
        blocks=_blocks(rcrp, other),
        igrade=round(IGRADE_RATIO_2023 * igrade_2022) if later else igrade_2022,
        s136=S136_2023 if later else S136_2022,
        open_at_end=round(IGRADE_RATIO_2023 * open_2022) if later else open_2022,
        quick_handover_share=0.30 if later else 0.12,
    )


_SAMPLE_BLOCKS: Final = (
    Block(CFS, 6, 3),
    Block(MH, 5, 2),
    Block(VULN, 3, 2),
    Block(CIIT, 3, 1),
    Block(WCP, 2, 1),
    Block(NOT_RCRP, 31, 16),
)

# SE: Mental Health deployment rate exactly 24/28 = 86% (16/14 in the last hour);
# elsewhere RCRP incidents are not deployed, so no other BCU/category rate can trip an
# alert. Both s136 detentions are SE Mental Health, created in the first hour; one waits
# 95 minutes at the place of safety (the breach), the other 35.
_BREACH_BLOCKS: Final = (
    Block(MH, 6, 5, bcu="SE", span=(0, 1)),
    Block(MH, 6, 5, bcu="SE", span=(1, 3)),
    Block(MH, 16, 14, bcu="SE", span=(3, 4)),
    Block(MH, 3, 0, bcu="NW"),
    Block(MH, 3, 0, bcu="WA"),
    Block(MH, 2, 0, bcu="EA"),
    Block(MH, 2, 0, bcu="AS"),
    Block(MH, 2, 0, bcu="CE"),
    Block(CFS, 30, 0),
    Block(VULN, 10, 0),
    Block(CIIT, 8, 0),
    Block(WCP, 2, 0),
    Block(NOT_RCRP, 100, 45),
)

# surge: 29 days of steady demand (4 weeks of history for the expected-demand baseline, and
# a day), Thursday 2 November 2023 20:00 to Friday 1 December 20:00 UTC: after the clock
# change, so every week's hours line up. RCRP incidents 10% deployed, nothing left open,
# no s136, every I and S incident attended in time, no undeployed S: no per-BCU alert
# but the anomaly can fire. In the last SURGE_HOURS hours NE gets SURGE_PER_HOUR extra
# incidents an hour (its steady demand then is about 2 an hour: about 4x).
SURGE_BCU: Final = "NE"
SURGE_HOURS: Final = 3
SURGE_PER_HOUR: Final = ((NOT_RCRP, 3, 1), (CFS, 2, 0), (MH, 1, 0))
_SURGE_LENGTH: Final = 29 * 24
_SURGE_BLOCKS: Final = (
    Block(CFS, 2240, 224),
    Block(MH, 1350, 135),
    Block(VULN, 630, 63),
    Block(CIIT, 430, 43),
    Block(WCP, 40, 4),
    Block(NOT_RCRP, 7310, 2193),
    *(
        Block(category, incidents, deployed, bcu=SURGE_BCU, span=(hour, hour + 1))
        for hour in range(_SURGE_LENGTH - SURGE_HOURS, _SURGE_LENGTH)
        for category, incidents, deployed in SURGE_PER_HOUR
    ),
)

ALL_PROFILES: Final[dict[str, Profile]] = {
    p.name: p
    for p in (
        _nov("met-nov-2022", 2022, MET_NOV_2022, (40000, 24000), MET_IGRADE_2022, MET_OPEN_2022),
        _nov("met-nov-2023", 2023, MET_NOV_2023, (40000, 24000), MET_IGRADE_2022, MET_OPEN_2022),
        _nov(
            "categories-2022", 2022, CATEGORIES_2022, (14000, 8400), CAT_IGRADE_2022, CAT_OPEN_2022
        ),
        _nov(
            "categories-2023", 2023, CATEGORIES_2023, (14000, 8400), CAT_IGRADE_2022, CAT_OPEN_2022
        ),
        Profile(
            name="sample",
            start=utc("2023-11-03T18:00:00"),
            hours=2,
            tail_s=3 * 3600,
            blocks=_SAMPLE_BLOCKS,
            igrade=12,
            s136=2,
            open_at_end=4,
            quick_handover_share=0.5,
            s136_lead_s=4 * 3600,
        ),
        Profile(
            name="breach",
            start=utc("2023-11-10T18:00:00"),
            hours=4,
            tail_s=0,
            blocks=_BREACH_BLOCKS,
            igrade=40,
            s136=2,
            open_at_end=0,
            quick_handover_share=0.0,
            s136_bcu="SE",
            s136_waits_min=(95, 35),
            s136_lead_s=3 * 3600,
            on_time_share=1.0,  # every I incident deployed and attended in 15 min: no
            igrade_deployed_share=1.0,  # attendance alert besides the intended ones
        ),
        Profile(
            name="surge",
            start=utc("2023-11-02T20:00:00"),
            hours=_SURGE_LENGTH,
            tail_s=0,
            blocks=_SURGE_BLOCKS,
            igrade=360,
            s136=0,
            open_at_end=0,
            quick_handover_share=0.0,
            on_time_share=1.0,
            igrade_deployed_share=1.0,
            undeployed_grades=(0, 60, 100),
            steady=True,
        ),
    )
}

PROFILES: Final[tuple[str, ...]] = tuple(ALL_PROFILES)
