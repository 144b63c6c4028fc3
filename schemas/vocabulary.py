"""The domain's fixed words, defined once: BCUs, RCRP categories, grades, reject reasons,
sources and targets. Everything imports them from here: the contract, the worker, the
state layer (whose Lua scripts get them through a generated prelude), the exporter,
evaluate, the generator and the rule and dashboard generators. ``tests/unit/
test_vocabulary.py`` fails if a copy elsewhere (Lua, YAML, JSON or Python) drifts.
"""

from __future__ import annotations

import re
from typing import Final, Literal, get_args

# -- BCUs ---------------------------------------------------------------------------------

# The 12 Basic Command Units, in the order the force lists them.
Bcu = Literal["AW", "AS", "CE", "CN", "EA", "NA", "NE", "NW", "SE", "SN", "SW", "WA"]
BCU_CODES: Final[tuple[str, ...]] = get_args(Bcu)
BCU_NAMES: Final[dict[str, str]] = {
    "AW": "Central West",
    "AS": "Central South",
    "CE": "Central East",
    "CN": "Central North",
    "EA": "East",
    "NA": "North",
    "NE": "North East",
    "NW": "North West",
    "SE": "South East",
    "SN": "South",
    "SW": "South West",
    "WA": "West",
}

# -- RCRP categories ----------------------------------------------------------------------

# The five categories the force reports as RCRP, in its briefing order. `not_rcrp` is
# deliberately absent from RCRP_CATEGORIES, so no rate or total built from it can
# include it; CATEGORIES is every category an incident can have.
CONCERN_FOR_SAFETY: Final = "concern_for_safety"
MENTAL_HEALTH: Final = "mental_health"
VULNERABLE: Final = "vulnerable"
COLLAPSE_ILLNESS_INJURY_TRAPPED: Final = "collapse_illness_injury_trapped"
WELFARE_CHECK_PARTNER: Final = "welfare_check_partner"
RCRP_LABELS: Final[dict[str, str]] = {
    CONCERN_FOR_SAFETY: "Concern for Safety",
    MENTAL_HEALTH: "Mental Health",
    VULNERABLE: "Vulnerable",
    COLLAPSE_ILLNESS_INJURY_TRAPPED: "Collapse/Illness/Inj/Trapped",
    WELFARE_CHECK_PARTNER: "Welfare Check Request (partners only)",
}
RCRP_CATEGORIES: Final[tuple[str, ...]] = tuple(RCRP_LABELS)
NOT_RCRP: Final = "not_rcrp"  # an opening code the mapping does not list
CATEGORIES: Final[tuple[str, ...]] = (*RCRP_CATEGORIES, NOT_RCRP)
CATEGORY_LABELS: Final[dict[str, str]] = {**RCRP_LABELS, NOT_RCRP: "not an RCRP incident"}

# -- Callers ------------------------------------------------------------------------------

# Who called. RCRP classification asks only whether it was the public or a partner.
PUBLIC_CALLER: Final = "public"
CALLERS: Final[tuple[str, ...]] = (
    PUBLIC_CALLER,
    "partner_health",
    "partner_social_care",
    "partner_other",
)

# -- Grades and targets -------------------------------------------------------------------

I_GRADE: Final = "I"  # the grade whose open list and attendance the wall watches
S_GRADE: Final = "S"
GRADES: Final[tuple[str, ...]] = (I_GRADE, S_GRADE, "E", "R")
UNKNOWN_GRADE: Final = "U"  # an incident no event has graded yet
GRADES_WITH_UNKNOWN: Final[tuple[str, ...]] = (*GRADES, UNKNOWN_GRADE)
# First attendance targets, seconds from creation to the first resource arriving.
ATTENDANCE_TARGET_S: Final[dict[str, int]] = {I_GRADE: 15 * 60, S_GRADE: 60 * 60}
TARGET_GRADES: Final[tuple[str, ...]] = tuple(ATTENDANCE_TARGET_S)
# An s136 handover at the place of safety is over target after this long.
S136_HANDOVER_TARGET_S: Final = 60 * 60

# -- Reject reasons -----------------------------------------------------------------------

# Why a message was refused (dead-lettered and counted); one fixed word each, never data.
MALFORMED_JSON: Final = "malformed_json"  # not UTF-8 JSON, or breaks a message rule
OVERSIZED: Final = "oversized"  # over the message size limit
SCHEMA_VIOLATION: Final = "schema_violation"  # valid JSON that breaks the contract
BAD_SOURCE: Final = "bad_source"  # an unusable or unregistered source header
TOO_LATE: Final = "too_late"  # further behind the source's watermark than the horizon
TOO_FAR_FUTURE: Final = "too_far_future"  # too far ahead of the wall clock
APPLY_ERROR: Final = "apply_error"  # the apply script failed on it
REJECT_REASONS: Final[tuple[str, ...]] = (
    MALFORMED_JSON,
    OVERSIZED,
    SCHEMA_VIOLATION,
    BAD_SOURCE,
    TOO_LATE,
    TOO_FAR_FUTURE,
    APPLY_ERROR,
)

# -- Sources ------------------------------------------------------------------------------

# The CAD feed; messages without a source header are live.
LIVE_SOURCE: Final = "live"
# Where rejections of unusable or unregistered source headers are counted: reserved,
# never a source one can register, list or delete.
UNKNOWN_SOURCE: Final = "unknown"
# The Kafka header a replay tags its messages with.
SOURCE_HEADER: Final = "demandmon-source"
# Safe as a Prometheus label value and inside a Redis hash tag.
SOURCE_NAME: Final = re.compile(r"^[a-z0-9][a-z0-9._-]{0,39}$")


def valid_source(name: str) -> bool:
    """A source name is safe as a label value and inside a Redis hash tag."""
    return bool(SOURCE_NAME.fullmatch(name))
