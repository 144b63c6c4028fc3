"""One incident's natural life, as events at offsets (seconds) from its creation.

Officer-hours arithmetic (the figures in brackets are what the oracle measures on seed 1):

* An ordinary deployment sends 1 resource (85%), 2 (13%) or 3 (2%), each with 1 officer
  (35%) or 2 (65%): about 1.17 x 1.65 = 1.93 officer-resources per deployed incident.
  A resource is busy from assignment to clearing: travel (minutes) plus time on scene,
  log-normal with mean ``ON_SCENE_MEAN_H`` (2.4 h), capped at 12 h: about 2.65 h in all,
  so an ordinary deployment costs about 1.93 x 2.65 = 5.1 officer hours [5.1].
* A s136 detention keeps a two-officer resource from assignment until 10-40 min after
  the handover: about 1 h before the detention, then the detention itself (transport to
  the place of safety 20-75 min, then the handover wait: within the hour for the
  profile's ``quick_handover_share`` (2022: 12%, 2023: 30%), otherwise 1 h plus a gamma
  delay averaging 7.5 h, capped at 20 h), then clearing: about 2 x 9.5 = 19 officer hours
  in 2022. 60% of detentions also have a second two-officer unit for the arrest and
  transport (2 x ~2.5 h), so about 22 officer hours per detention [21.6 in 2022, 18.9 in
  2023]: the briefing's 22.5 officer hours per detention (200 fewer = 4,500 hours). That is
  the s136 officer time (``demand_s136_officer_time_seconds``, every unit's officers x
  assigned-to-cleared on incidents with a detention). Detention time
  (``demand_s136_detention_seconds``), handover - detained, once per detention and not
  multiplied by officers, is about 8 h [7.8 in 2022, 6.5 in 2023].
* Over a profile the s136 detentions add 0.2-0.3 (met-nov) or 0.7-0.9 (categories)
  officer hours per deployed incident: about 5.3-5.9 officer hours per deployment in all
  [met-nov 5.4 / 5.3, categories 5.9 / 5.8], against the briefing's 34,000 hours for
  6,000 deployments = 5.7. Incidents still running at the end of a profile are cut short
  or left open, which pulls the averages down slightly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from random import Random
from typing import Final

from schemas.vocabulary import GRADES, I_GRADE, S_GRADE, TARGET_GRADES
from streams.generate.codes import (
    CLOSING_DEPLOYED_PICK,
    CLOSING_NOT_DEPLOYED_PICK,
    CLOSING_S136,
    PLACE_PICK,
    other_code,
)

Fields = dict[str, object]
# (offset seconds, event type, extra fields, level). ESSENTIAL events decide a figure
# (category, grade, deployed, s136 detention) and are never cut at the end of a profile;
# EXACT ones (a scripted s136 wait) are also never moved by compressing the life.
Ev = tuple[int, str, Fields, int]
ORDINARY: Final = 0
ESSENTIAL: Final = 1
EXACT: Final = 2

ON_SCENE_MEAN_H: Final = 2.4
ON_SCENE_SIGMA: Final = 0.8
S136_EXTRA_WAIT_MEAN_H: Final = 7.5
LATE_WINDOW_S: Final = 2 * 3600  # no reclassification/regrade this close to the cutoff


@dataclass(slots=True)
class Spec:
    """What an incident must end up as (decided before any event is drawn)."""

    category: str
    deployed: bool
    bcu: str
    created: int
    code: str = ""
    caller: str = ""
    grade: str = "E"
    s136: bool = False
    s136_wait_s: int | None = None  # fixed handover wait, else drawn
    open: bool = False
    incident_id: str = ""
    event_prefix: str = ""


def _on_scene(rng: Random) -> int:
    mu = math.log(ON_SCENE_MEAN_H * 3600) - ON_SCENE_SIGMA**2 / 2
    return min(12 * 3600, max(300, int(rng.lognormvariate(mu, ON_SCENE_SIGMA))))


def _call_sign(bcu: str, rng: Random, taken: set[str]) -> str:
    while True:
        sign = f"{bcu}{rng.randint(1, 40):02d}{rng.choice('ABCDEFGH')}"
        if sign not in taken:
            taken.add(sign)
            return sign


def _first_response(grade: str, on_time: bool, rng: Random) -> tuple[int, int]:
    """(assigned, arrived) offsets of the first resource."""
    if grade == I_GRADE:
        assigned = rng.randint(20, 180)
        arrived = rng.randint(assigned + 60, 880) if on_time else rng.randint(901, 2700)
    elif grade == S_GRADE:
        assigned = rng.randint(120, 1500)
        arrived = rng.randint(assigned + 120, 3540) if on_time else rng.randint(3601, 7200)
    else:
        assigned = rng.randint(600, 7200) if grade == "E" else rng.randint(1800, 14400)
        arrived = assigned + rng.randint(300, 2400)
    return assigned, arrived


def _wait(spec: Spec, quick_share: float, rng: Random) -> int:
    if spec.s136_wait_s is not None:
        return spec.s136_wait_s
    if rng.random() < quick_share:
        return rng.randint(900, 3600)
    extra = rng.gammavariate(2.0, S136_EXTRA_WAIT_MEAN_H * 3600 / 2)
    return 3660 + min(int(extra), 19 * 3600)


def _s136(spec: Spec, first: tuple[int, int], quick_share: float, rng: Random) -> list[Ev]:
    assigned, arrived = first
    scripted = spec.s136_wait_s is not None  # a test scenario: quick, kept exact
    if scripted:  # within 2.75 h of creation up to the handover
        assigned = rng.randint(60, 300)
        arrived = assigned + rng.randint(300, 600)
    taken: set[str] = set()
    unit = _call_sign(spec.bcu, rng, taken)
    detained = arrived + (rng.randint(600, 1200) if scripted else rng.randint(900, 4500))
    at_pos = detained + (rng.randint(1200, 1800) if scripted else rng.randint(1200, 4500))
    handover = at_pos + _wait(spec, quick_share, rng)
    level = EXACT if scripted else ORDINARY
    evs: list[Ev] = [
        (assigned, "resource_assigned", {"resource_id": unit, "officers": 2}, ESSENTIAL),
        (arrived, "resource_arrived", {"resource_id": unit}, level),
        (detained, "s136_detained", {}, EXACT if scripted else ESSENTIAL),
        (at_pos, "s136_arrived_pos", {"place": PLACE_PICK(rng)}, level),
        (handover, "s136_handover", {}, level),
        (handover + rng.randint(600, 2400), "resource_cleared", {"resource_id": unit}, ORDINARY),
    ]
    if rng.random() < 0.6:
        second = _call_sign(spec.bcu, rng, taken)
        b_assigned = assigned + rng.randint(0, 600)
        b_arrived = b_assigned + rng.randint(300, 1200)
        b_cleared = max(b_arrived + 600, detained + rng.randint(1800, 9000))
        evs += [
            (b_assigned, "resource_assigned", {"resource_id": second, "officers": 2}, ORDINARY),
            (b_arrived, "resource_arrived", {"resource_id": second}, ORDINARY),
            (b_cleared, "resource_cleared", {"resource_id": second}, ORDINARY),
        ]
    return evs


def _resources(spec: Spec, first: tuple[int, int], rng: Random) -> list[Ev]:
    draw = rng.random()
    count = 1 if draw < 0.85 else 2 if draw < 0.98 else 3
    taken: set[str] = set()
    evs: list[Ev] = []
    for n in range(count):
        unit = _call_sign(spec.bcu, rng, taken)
        officers = 2 if rng.random() < 0.65 else 1
        if n == 0:
            assigned, arrived = first
        else:
            assigned = first[0] + rng.randint(60, 2400)
            arrived = assigned + rng.randint(180, 1500)
        evs.append(
            (
                assigned,
                "resource_assigned",
                {"resource_id": unit, "officers": officers},
                ESSENTIAL if n == 0 else ORDINARY,
            )
        )
        if n > 0 and rng.random() < 0.04:  # stood down before arriving
            evs.append(
                (
                    assigned + rng.randint(120, 900),
                    "resource_cleared",
                    {"resource_id": unit},
                    ORDINARY,
                )
            )
            continue
        evs.append((arrived, "resource_arrived", {"resource_id": unit}, ORDINARY))
        evs.append((arrived + _on_scene(rng), "resource_cleared", {"resource_id": unit}, ORDINARY))
    return evs


def _coding(spec: Spec, late: bool, reclass_share: float, rng: Random) -> tuple[str, list[Ev]]:
    """The opening code on ``created`` and any reclassifications to the final code."""
    if late or rng.random() >= reclass_share:
        return spec.code, []
    chain = [other_code(spec.code, rng)]
    if rng.random() < 0.1:
        chain.append(other_code(spec.code, rng))
    chain.append(spec.code)
    evs: list[Ev] = []
    offset = rng.randint(120, 2400)
    for code in chain[1:]:
        evs.append((offset, "classified", {"opening_code": code}, ESSENTIAL))
        offset += rng.randint(120, 1800)
    return chain[0], evs


def _grading(
    spec: Spec, late: bool, regrade_share: float, rng: Random
) -> tuple[str | None, list[Ev]]:
    """The grade on ``created`` (None: graded shortly after) and any regrade."""
    regrade = not late and rng.random() < regrade_share
    initial = rng.choice([g for g in GRADES if g != spec.grade]) if regrade else spec.grade
    evs: list[Ev] = []
    on_created: str | None = initial
    offset = 0
    if not late and rng.random() >= 0.7:
        on_created = None
        offset = rng.randint(30, 300)
        evs.append((offset, "graded", {"grade": initial}, ESSENTIAL))
    if regrade:
        evs.append((offset + rng.randint(180, 3600), "graded", {"grade": spec.grade}, ESSENTIAL))
    return on_created, evs


def lifecycle(
    spec: Spec,
    rng: Random,
    *,
    cutoff: int,
    reclass_share: float,
    regrade_share: float,
    on_time_share: float,
    quick_share: float,
) -> list[Ev]:
    """The incident's events at offsets from creation, sorted; the last one closes it."""
    late = spec.created > cutoff - LATE_WINDOW_S
    opening, evs = _coding(spec, late, reclass_share, rng)
    grade, grading = _grading(spec, late, regrade_share, rng)
    created: Fields = {"opening_code": opening, "caller": spec.caller}
    if grade is not None:
        created["grade"] = grade
    evs = [(0, "created", created, ESSENTIAL), *evs, *grading]
    busy = max(off for off, *_ in evs)
    if spec.deployed:
        first = _first_response(spec.grade, rng.random() < on_time_share, rng)
        if spec.s136:
            evs += _s136(spec, first, quick_share, rng)
            closing = CLOSING_S136
        else:
            evs += _resources(spec, first, rng)
            closing = CLOSING_DEPLOYED_PICK(rng)
        busy = max(off for off, *_ in evs)
        evs.append((busy + rng.randint(120, 1800), "closed", {"closing_code": closing}, ORDINARY))
    elif rng.random() < 0.15:
        evs.append((busy + rng.randint(120, 3600), "cancelled", {}, ORDINARY))
    else:
        span = rng.randint(300, 3600) if spec.grade in TARGET_GRADES else rng.randint(600, 4 * 3600)
        fields: Fields = {}
        if rng.random() < 0.9:
            fields["closing_code"] = CLOSING_NOT_DEPLOYED_PICK(rng)
        evs.append((busy + span, "closed", fields, ORDINARY))
    evs.sort(key=lambda ev: ev[0])
    return evs
