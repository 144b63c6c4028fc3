"""Build a profile's stream: decide every incident's outcome first, then draw its events.

Exactness comes from deciding outcomes before events: each incident's final category,
deployed flag, final grade, s136 detention and open/closed state are fixed by exact
counts (profiles.py), and its events are then drawn to lead there (a reclassification
starts from another code and ends at the final one, by time; a regrade likewise). Times
are whole seconds; no two events that compete for category or grade share a time, so
the figures do not depend on arrival order.
"""

from __future__ import annotations

import time
from random import Random
from typing import Final

from schemas import SCHEMA_ID
from schemas.vocabulary import CONCERN_FOR_SAFETY as CFS
from schemas.vocabulary import I_GRADE, NOT_RCRP, S_GRADE
from schemas.vocabulary import MENTAL_HEALTH as MH
from schemas.vocabulary import VULNERABLE as VULN
from streams.generate.codes import (
    CLOSED_SUMMARIES,
    CREATED_SUMMARIES,
    Picker,
    pick_code_and_caller,
)
from streams.generate.curves import BCU_WEIGHTS, NEIGHBOURS, hour_cum_weights
from streams.generate.lifecycle import ESSENTIAL, EXACT, Ev, Spec, lifecycle
from streams.generate.profiles import ALL_PROFILES, Block, Profile
from streams.generate.steady import steady_slots

SCHEMA: Final = SCHEMA_ID
Event = dict[str, object]

# s136 detentions happen on deployed incidents of these categories, by weight per incident.
S136_WEIGHTS: Final[dict[str, float]] = {MH: 8.0, CFS: 3.0, VULN: 2.0, NOT_RCRP: 0.3}
BCU_PICK: Final = Picker(tuple(BCU_WEIGHTS.items()))
OPEN_RECENT_S: Final = 12 * 3600


def get_profile(name: str) -> Profile:
    try:
        return ALL_PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}") from None


def _placed(block: Block, prof: Profile) -> bool:
    return prof.steady and block.bcu is None and block.span is None


def _specs(prof: Profile, rng: Random) -> list[Spec]:
    specs: list[Spec] = []
    whole = hour_cum_weights(prof.start, prof.hours)
    quota = sum(b.incidents for b in prof.blocks if _placed(b, prof))
    slots = steady_slots(prof.start, prof.hours, quota, rng) if quota else []
    for block in prof.blocks:
        first, last = block.span or (0, prof.hours)
        cum = (
            whole
            if block.span is None
            else hour_cum_weights(prof.start + first * 3600, last - first)
        )
        cells: list[tuple[int, str]] = []
        if _placed(block, prof):
            cells, slots = slots[: block.incidents], slots[block.incidents :]
            hours = [hour for hour, _ in cells]
        else:
            hours = rng.choices(range(first, last), cum_weights=cum, k=block.incidents)
        flags = [True] * block.deployed + [False] * (block.incidents - block.deployed)
        rng.shuffle(flags)
        for n, (hour, deployed) in enumerate(zip(hours, flags, strict=True)):
            created = min(prof.start + hour * 3600 + rng.randrange(3600), prof.cutoff)
            bcu = cells[n][1] if cells else block.bcu or BCU_PICK(rng)
            spec = Spec(block.category, deployed, bcu, created)
            spec.code, spec.caller = pick_code_and_caller(block.category, rng)
            specs.append(spec)
    specs.sort(key=lambda s: s.created)
    return specs


def _weighted_sample(items: list[Spec], weights: list[float], k: int, rng: Random) -> list[Spec]:
    """Exactly k items without replacement, by weight (Efraimidis-Spirakis keys)."""
    if k > len(items):
        raise ValueError(f"profile asks for {k} but only {len(items)} incidents qualify")
    keyed = sorted(((rng.random() ** (1.0 / w), n) for n, w in enumerate(weights)), reverse=True)
    return [items[n] for _, n in keyed[:k]]


def _assign_s136(specs: list[Spec], prof: Profile, rng: Random) -> None:
    eligible = [
        s
        for s in specs
        if s.deployed
        and s.category in S136_WEIGHTS
        and (prof.s136_bcu is None or s.bcu == prof.s136_bcu)
        and s.created <= prof.cutoff - prof.s136_lead_s
    ]
    chosen = _weighted_sample(
        eligible, [S136_WEIGHTS[s.category] for s in eligible], prof.s136, rng
    )
    chosen.sort(key=lambda s: s.created)
    for n, spec in enumerate(chosen):
        spec.s136 = True
        if n < len(prof.s136_waits_min):
            spec.s136_wait_s = prof.s136_waits_min[n] * 60


def _assign_grades(specs: list[Spec], prof: Profile, rng: Random) -> None:
    deployed = [s for s in specs if s.deployed]
    other = [s for s in specs if not s.deployed]
    from_deployed = min(round(prof.igrade_deployed_share * prof.igrade), len(deployed))
    from_deployed = max(from_deployed, prof.igrade - len(other))
    igrade = rng.sample(deployed, from_deployed) + rng.sample(other, prof.igrade - from_deployed)
    for spec in igrade:
        spec.grade = I_GRADE
    for spec in specs:
        if spec.grade == I_GRADE:
            continue
        if spec.s136:
            spec.grade = S_GRADE
        elif spec.deployed:
            spec.grade = rng.choices("SER", cum_weights=(60, 95, 100))[0]
        else:
            spec.grade = rng.choices("SER", cum_weights=prof.undeployed_grades)[0]


def _assign_open(specs: list[Spec], lives: list[list[Ev]], prof: Profile, rng: Random) -> None:
    """Exactly ``open_at_end`` incidents stay open: first those whose life runs past the
    cutoff, then recent ones; everything else closes by the cutoff."""
    overrun = [n for n, s in enumerate(specs) if s.created + lives[n][-1][0] > prof.cutoff]
    need = prof.open_at_end
    if len(overrun) >= need:
        chosen = rng.sample(overrun, need)
    else:
        taken = set(overrun)
        rest = [n for n in range(len(specs)) if n not in taken]
        recent = [n for n in rest if specs[n].created >= prof.cutoff - OPEN_RECENT_S]
        pool = recent if len(recent) >= need - len(overrun) else rest
        chosen = overrun + rng.sample(pool, need - len(overrun))
    for n in chosen:
        specs[n].open = True


def _fit(spec: Spec, life: list[Ev], cutoff: int) -> list[Ev]:
    """The events as they stand at the cutoff: open incidents lose their closing event
    and whatever comes after the cutoff; the life is compressed in time where needed so
    that every essential event (and, if closed, the closing one) is on or before it.
    Compression keeps the life up to its last EXACT event as it is when that fits."""
    room = cutoff - spec.created
    if spec.open:
        life = [ev for ev in life if ev[1] not in ("closed", "cancelled")]
        must = max(off for off, _, _, level in life if level >= ESSENTIAL)
    else:
        must = life[-1][0]
    if must > room:
        keep = max((off for off, _, _, level in life if level == EXACT), default=0)
        if keep > room:
            keep = 0
        span = room - keep
        life = [
            (off if off <= keep else keep + (off - keep) * span // (must - keep), kind, f, level)
            for off, kind, f, level in life
        ]
    return [ev for ev in life if ev[0] <= room]


def _incident_ids(specs: list[Spec], rng: Random) -> None:
    """CAD numbers per (UTC) day, with gaps: calls that did not become incidents."""
    day, stamp, serial = -1, "", 0
    for spec in specs:
        if spec.created // 86400 != day:
            day, serial = spec.created // 86400, 0
            stamp = time.strftime("%Y/%m/%d", time.gmtime(spec.created))
        serial += rng.randint(1, 3)
        spec.incident_id = f"CAD/{stamp}/{serial:05d}"
        spec.event_prefix = f"ev{stamp.replace('/', '')[2:]}.{serial:05d}"


def _render(spec: Spec, life: list[Ev], rng: Random) -> list[tuple[int, int, Event]]:
    out: list[tuple[int, int, Event]] = []
    for seq, (offset, kind, fields, _) in enumerate(life):
        at = spec.created + offset
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
        if rng.random() < 0.03:
            stamp = stamp[:-1] + "+00:00"
        event: Event = {
            "schema": SCHEMA,
            "event_id": f"{spec.event_prefix}.{seq:02d}",
            "incident_id": spec.incident_id,
            "type": kind,
            "occurred_at": stamp,
        }
        if kind == "created":
            event["bcu"] = spec.bcu
        else:
            draw = rng.random()
            if draw < 0.01 and kind.startswith("resource_"):
                event["bcu"] = NEIGHBOURS[spec.bcu]  # a unit from next door; figures keep
            elif draw < 0.4:  # the creation BCU
                event["bcu"] = spec.bcu
        event.update(fields)
        if kind == "created" and rng.random() < 0.12:
            event["summary"] = rng.choice(CREATED_SUMMARIES)
        elif kind == "closed" and rng.random() < 0.03:
            event["summary"] = rng.choice(CLOSED_SUMMARIES)
        out.append((at, seq, event))
    return out


def build(prof: Profile, seed: int) -> tuple[list[Event], int]:
    """(events in time order, number of incidents)."""
    rng = Random(f"{prof.name}:{seed}")
    specs = _specs(prof, rng)
    _assign_s136(specs, prof, rng)
    _assign_grades(specs, prof, rng)
    _incident_ids(specs, rng)
    lives = [
        lifecycle(
            spec,
            rng,
            cutoff=prof.cutoff,
            reclass_share=prof.reclass_share,
            regrade_share=prof.regrade_share,
            on_time_share=prof.on_time_share,
            quick_share=prof.quick_handover_share,
        )
        for spec in specs
    ]
    _assign_open(specs, lives, prof, rng)
    rows: list[tuple[int, int, int, Event]] = []
    for n, (spec, life) in enumerate(zip(specs, lives, strict=True)):
        for at, seq, event in _render(spec, _fit(spec, life, prof.cutoff), rng):
            rows.append((at, n, seq, event))
    rows.sort(key=lambda row: row[:3])
    return [row[3] for row in rows], len(specs)


def arrange(events: list[Event], key: str, duplicates: float, shuffle: bool) -> list[Event]:
    """File order: optionally shuffled, then a fraction re-emitted later (same event)."""
    if not 0.0 <= duplicates <= 1.0:
        raise ValueError("duplicates must be a fraction between 0 and 1")
    out = list(events)
    if shuffle:
        Random(f"{key}:shuffle").shuffle(out)
    count = round(duplicates * len(out))
    if count == 0:
        return out
    rng = Random(f"{key}:duplicates")
    placed: list[tuple[int, int, int, Event]] = [(n, 0, 0, e) for n, e in enumerate(out)]
    for k, n in enumerate(sorted(rng.sample(range(len(out)), count))):
        placed.append((rng.randint(n + 1, len(out)), -1, k, dict(out[n])))
    placed.sort(key=lambda row: row[:3])
    return [row[3] for row in placed]


def generate_stream(
    profile: str, seed: int, duplicates: float = 0.0, shuffle: bool = False
) -> tuple[list[Event], int]:
    """(events in file order, number of incidents) for ``demandmon generate``."""
    prof = get_profile(profile)
    events, incidents = build(prof, seed)
    return arrange(events, f"{prof.name}:{seed}", duplicates, shuffle), incidents


def generate_events(profile: str, seed: int) -> list[Event]:
    """Contract-v1 event dicts of ``profile`` in file (time) order."""
    return build(get_profile(profile), seed)[0]
