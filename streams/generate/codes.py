"""What the synthetic CAD records say: opening codes, callers, closing codes, free text.

Everything here is invented and harmless: the free-text summaries describe situations,
never people, so the stream can be shown and shipped freely.
"""

from __future__ import annotations

from bisect import bisect
from itertools import accumulate
from random import Random
from typing import Final

from schemas.vocabulary import COLLAPSE_ILLNESS_INJURY_TRAPPED as CIIT
from schemas.vocabulary import CONCERN_FOR_SAFETY as CFS
from schemas.vocabulary import MENTAL_HEALTH as MH
from schemas.vocabulary import NOT_RCRP, PUBLIC_CALLER
from schemas.vocabulary import VULNERABLE as VULN
from schemas.vocabulary import WELFARE_CHECK_PARTNER as WCP

Weighted = tuple[tuple[str, int], ...]

# Opening codes per final category (the contract's default mapping). WELFARE_CHECK is
# concern_for_safety only from a public caller and welfare_check_partner only from a
# partner, so the caller is drawn first and the code must agree with it.
OPENING_CODES: Final[dict[str, Weighted]] = {
    CFS: (("CONCERN_FOR_SAFETY", 70), ("WELFARE_CHECK", 30)),
    MH: (("MENTAL_HEALTH", 75), ("AWOL_MENTAL_HEALTH", 15), ("WALKOUT_HEALTHCARE", 10)),
    VULN: (("VULNERABLE_PERSON", 70), ("MISSING_VULNERABLE", 30)),
    CIIT: (("COLLAPSE", 35), ("ILLNESS", 30), ("INJURY", 25), ("TRAPPED", 10)),
    WCP: (("WELFARE_CHECK", 1),),
    NOT_RCRP: (
        ("ASB", 14),
        ("DOMESTIC", 13),
        ("THEFT", 12),
        ("ASSAULT", 10),
        ("ROAD_TRAFFIC_COLLISION", 9),
        ("SUSPICIOUS_CIRCUMSTANCES", 8),
        ("BURGLARY", 6),
        ("ALARM", 5),
        ("PUBLIC_ORDER", 5),
        ("CRIMINAL_DAMAGE", 5),
        ("SHOPLIFTING", 4),
        ("ROBBERY", 3),
        ("DRUGS", 3),
        ("HIGHWAY_DISRUPTION", 3),
    ),
}

CALLERS: Final[dict[str, Weighted]] = {
    CFS: (("public", 85), ("partner_health", 6), ("partner_social_care", 5), ("partner_other", 4)),
    MH: (("public", 70), ("partner_health", 22), ("partner_social_care", 5), ("partner_other", 3)),
    VULN: (
        ("public", 75),
        ("partner_social_care", 12),
        ("partner_other", 7),
        ("partner_health", 6),
    ),
    CIIT: (("public", 90), ("partner_health", 8), ("partner_other", 2)),
    WCP: (("partner_health", 45), ("partner_social_care", 40), ("partner_other", 15)),
    NOT_RCRP: (("public", 97), ("partner_other", 3)),
}

CLOSING_DEPLOYED: Final[Weighted] = (
    ("ATTENDED_NO_OFFENCE", 30),
    ("CRIME_REPORTED", 25),
    ("HANDED_TO_PARTNER", 15),
    ("ADVICE_GIVEN", 15),
    ("ARREST", 10),
    ("UNABLE_TO_LOCATE", 5),
)
CLOSING_NOT_DEPLOYED: Final[Weighted] = (
    ("ADVICE_GIVEN", 35),
    ("REFERRED_TO_PARTNER", 30),
    ("NO_POLICE_ACTION", 20),
    ("CRIME_REPORTED", 10),
    ("DUPLICATE_CALL", 5),
)
CLOSING_S136: Final = "S136_HANDED_OVER"

PLACES: Final[Weighted] = (("ED", 55), ("HBPOS", 40), ("police_station", 5))

CREATED_SUMMARIES: Final[tuple[str, ...]] = (
    "caller concerned about neighbour",
    "no reply at address, curtains drawn for days",
    "relative unable to make contact",
    "patient left ward before assessment",
    "person seen acting strangely near station",
    "elderly person fallen at home",
    "noise and shouting reported from flat",
    "vehicle blocking junction",
    "alarm sounding at commercial premises",
    "group causing nuisance outside shop",
    "ambulance crew request police assistance",
    "care home reports resident not returned",
)
CLOSED_SUMMARIES: Final[tuple[str, ...]] = (
    "handed over to partner agency",
    "advice given by phone",
    "all parties spoken to, no further action",
    "duplicate of earlier call",
    "ambulance on scene, police stood down",
)


class Picker:
    """Weighted choice over a fixed table, with precomputed cumulative weights."""

    __slots__ = ("cum", "total", "values")

    def __init__(self, table: Weighted) -> None:
        self.values = [v for v, _ in table]
        self.cum = list(accumulate(w for _, w in table))
        self.total = self.cum[-1]

    def __call__(self, rng: Random) -> str:
        return self.values[bisect(self.cum, rng.random() * self.total)]


CODE_PICKERS: Final = {cat: Picker(t) for cat, t in OPENING_CODES.items()}
CALLER_PICKERS: Final = {cat: Picker(t) for cat, t in CALLERS.items()}
CLOSING_DEPLOYED_PICK: Final = Picker(CLOSING_DEPLOYED)
CLOSING_NOT_DEPLOYED_PICK: Final = Picker(CLOSING_NOT_DEPLOYED)
PLACE_PICK: Final = Picker(PLACES)
ALL_CODES: Final[tuple[str, ...]] = tuple(
    sorted({code for table in OPENING_CODES.values() for code, _ in table})
)


def pick_code_and_caller(category: str, rng: Random) -> tuple[str, str]:
    """A final opening code and caller whose mapping gives ``category``."""
    caller = CALLER_PICKERS[category](rng)
    code = CODE_PICKERS[category](rng)
    if category == CFS and code == "WELFARE_CHECK" and caller != PUBLIC_CALLER:
        code = "CONCERN_FOR_SAFETY"
    return code, caller


def other_code(final: str, rng: Random) -> str:
    """An opening code an incident was first given before being reclassified to
    ``final`` (any code but ``final``; its category does not matter)."""
    while True:
        code = rng.choice(ALL_CODES)
        if code != final:
            return code
