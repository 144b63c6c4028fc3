"""The list of open incidents, pure: what `demandmon open` and the exporter's
/open-incidents show, worked out from what demandmon/state/open_read.py reads.

"Open" is what ``demand_open_incidents`` counts: created and neither closed nor cancelled
(the shard's ``open:<bcu>:<grade>`` sorted sets, scored by creation time). "Past target"
is what ``demand_open_incidents_past_target`` counts: an open I or S incident not yet
attended (no resource arrived) and older than its grade's target at the source's window
end (its watermark; now for ``live``). Only allow-listed values and incident ids (the
contract's id alphabet) ever leave here: never free text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from schemas.vocabulary import (
    ATTENDANCE_TARGET_S,
    BCU_CODES,
    CATEGORIES,
    GRADES_WITH_UNKNOWN,
    NOT_RCRP,
    valid_source,
)

DEFAULT_LIMIT: Final = 500
MAX_LIMIT: Final = 5000
# The contract's incident id alphabet: anything else in Redis is not shown.
_INCIDENT_ID: Final = re.compile(r"[A-Za-z0-9._:/-]{1,64}")
# The JSON keys of one row, in order (the exporter's endpoint and `open --format json`).
ROW_KEYS: Final = (
    "incident_id",
    "bcu",
    "category",
    "grade",
    "age_seconds",
    "attended",
    "past_target",
)


@dataclass(frozen=True, order=True)
class OpenIncident:
    """One open incident, ordered oldest first (creation time, then id)."""

    created_ms: int
    incident_id: str
    bcu: str
    grade: str
    category: str
    attended: bool


@dataclass(frozen=True)
class OpenList:
    """The oldest ``limit`` open incidents of a source (``incidents``, oldest first) and
    how many are open in all under the filters (``total``)."""

    source: str
    window_end_ms: int
    live_end: bool  # the window ends now (live), not at a watermark
    total: int
    incidents: tuple[OpenIncident, ...]

    @property
    def truncated(self) -> bool:
        return self.total > len(self.incidents)


def check_filters(source: str, bcu: str | None, grade: str | None, flag: str = "") -> str | None:
    """Why a filter is refused (naming the option as ``flag`` + name, never echoing the
    value), or None: the source must be a source name, the BCU and grade allow-listed."""
    if not valid_source(source):
        return f"{flag}source must be a source name ([a-z0-9][a-z0-9._-]{{0,39}})"
    if bcu is not None and bcu not in BCU_CODES:
        return f"{flag}bcu must be one of {' '.join(BCU_CODES)}"
    if grade is not None and grade not in GRADES_WITH_UNKNOWN:
        return f"{flag}grade must be one of {' '.join(GRADES_WITH_UNKNOWN)}"
    return None


def check_limit(raw: str, flag: str = "") -> int | str:
    """A row cap from text: the number, or why it is refused."""
    if not re.fullmatch(r"[0-9]{1,6}", raw) or not 1 <= int(raw) <= MAX_LIMIT:
        return f"{flag}limit must be a whole number from 1 to {MAX_LIMIT}"
    return int(raw)


def decode(incident_id: str, raw: bytes | str | None, bcu: str, grade: str) -> OpenIncident | None:
    """An open incident from its record in the shard's ``inc`` hash (record.INCIDENT_KEYS)
    and the open set it was found in; None when it is gone, closed since, or not fit to
    show."""
    if raw is None or not _INCIDENT_ID.fullmatch(incident_id):
        return None
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(record, dict) or record.get("x") or not isinstance(record.get("c"), int):
        return None
    category = record.get("cp") if record.get("cl") == "p" else record.get("cq")
    category = category or NOT_RCRP
    if category not in CATEGORIES or bcu not in BCU_CODES or grade not in GRADES_WITH_UNKNOWN:
        return None
    return OpenIncident(
        created_ms=int(record["c"]),
        incident_id=incident_id,
        bcu=bcu,
        grade=grade,
        category=str(category),
        attended=record.get("fa") is not None,
    )


def past_target(incident: OpenIncident, end_ms: int) -> bool:
    """Not attended and older than its grade's target at the window end (I 15 min, S 60
    min; other grades have none)."""
    target_s = ATTENDANCE_TARGET_S.get(incident.grade)
    if target_s is None or incident.attended:
        return False
    return incident.created_ms < end_ms - target_s * 1000


def age_seconds(incident: OpenIncident, end_ms: int) -> int:
    """Whole seconds from creation to the window end (0 for an incident created after
    it, e.g. a live event a little ahead of this clock)."""
    return max(0, (end_ms - incident.created_ms) // 1000)


def rows(listing: OpenList) -> list[dict[str, Any]]:
    """The JSON rows, oldest first, with exactly ROW_KEYS."""
    end = listing.window_end_ms
    return [
        {
            "incident_id": i.incident_id,
            "bcu": i.bcu,
            "category": i.category,
            "grade": i.grade,
            "age_seconds": age_seconds(i, end),
            "attended": i.attended,
            "past_target": past_target(i, end),
        }
        for i in sorted(listing.incidents)
    ]


def as_json(listing: OpenList) -> str:
    return json.dumps(rows(listing), separators=(",", ":"))


# -- Reading the oldest N across many sorted sets, exactly and boundedly ------------------

Member = tuple[int, str]  # (creation ms, incident id): the order of an open set


@dataclass
class SetRead:
    """What has been read of one open set: its first members in order, and its size."""

    size: int
    members: list[Member]

    @property
    def exhausted(self) -> bool:
        return len(self.members) >= self.size


def first_fetch(sizes: Sequence[int], limit: int) -> int:
    """How many members to read first from each non-empty set: enough that a fair share
    of ``limit`` comes in one round, at least 16."""
    nonempty = sum(1 for s in sizes if s > 0)
    return min(limit, max(16, -(-2 * limit // max(1, nonempty))))


def oldest(reads: Sequence[SetRead], limit: int) -> list[Member]:
    """The oldest ``limit`` of what has been read, across sets."""
    return sorted(m for r in reads for m in r.members)[:limit]


def more_needed(reads: Sequence[SetRead], limit: int) -> dict[int, int]:
    """Which sets (by index) must be read further, and up to how many members, before
    ``oldest`` is exact: a set not read to its end whose last member read is older than
    the ``limit``-th oldest so far may hold older ones. No set is read beyond ``limit``
    members, so a call reads at most ``limit`` per set, and each round doubles."""
    chosen = oldest(reads, limit)
    cut: Member | None = chosen[-1] if len(chosen) >= limit else None
    out: dict[int, int] = {}
    for index, r in enumerate(reads):
        if r.exhausted or len(r.members) >= limit or not r.members:
            continue
        if cut is None or r.members[-1] < cut:
            out[index] = min(limit, r.size, 2 * len(r.members))
    return out
