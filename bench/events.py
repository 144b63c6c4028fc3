"""Simple, valid contract-v1 events for the throughput benchmark, spread evenly over D days.

The briefing profiles in ``streams.generate`` cover 28 days at fixed totals; a benchmark
needs any count over any span (longer than the 35-day retention horizon, so pruning runs
and memory can be shown to level off). Every incident has the same six-event life:
created, graded, resource_assigned, resource_arrived, resource_cleared, closed.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from random import Random
from typing import Final

from schemas import SCHEMA_ID
from schemas.vocabulary import BCU_CODES
from streams.generate.codes import OPENING_CODES

EVENTS_PER_INCIDENT: Final = 6
# 2024-01-01T00:00:00Z: well in the past, so a replay source never meets the future limit.
START_S: Final = 1_704_067_200
# Flattened (code, weight) over all categories: RCRP and everyday codes in one draw.
CODES: Final = [code for weighted in OPENING_CODES.values() for code, _ in weighted]
CODE_WEIGHTS: Final = [w for weighted in OPENING_CODES.values() for _, w in weighted]
CALLERS: Final = ("public", "partner_health", "partner_social_care", "partner_other")
CALLER_WEIGHTS: Final = (85, 7, 5, 3)
SUMMARIES: Final = ("caller reports a concern", "neighbour requests a check", "no details")


@dataclass
class BenchEvents:
    """Pre-encoded messages in send (event-time) order, plus what the raw Redis loop needs."""

    keys: list[bytes] = field(default_factory=list)
    values: list[bytes] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)
    occurred_ms: list[int] = field(default_factory=list)
    incidents: int = 0
    days: float = 0.0

    def __len__(self) -> int:
        return len(self.values)

    @property
    def payload_bytes(self) -> int:
        return sum(len(v) for v in self.values)


def _stamp(at: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def incident_life(n: int, created: int, rng: Random) -> list[tuple[int, dict[str, object]]]:
    """(event time, event) for incident number ``n``: one resource, attended and closed."""
    bcu = rng.choice(BCU_CODES)
    incident_id = f"CAD/{time.strftime('%Y/%m/%d', time.gmtime(created))}/{n:07d}"
    resource = f"{bcu}-{rng.randrange(1, 400):03d}"
    graded = created + rng.randrange(30, 180)
    assigned = graded + rng.randrange(60, 900)
    arrived = assigned + rng.randrange(120, 1800)
    cleared = arrived + rng.randrange(900, 7200)
    closed = cleared + rng.randrange(60, 900)
    opening = rng.choices(CODES, weights=CODE_WEIGHTS)[0]
    caller = rng.choices(CALLERS, weights=CALLER_WEIGHTS)[0]
    grade = rng.choices("ISER", weights=(20, 40, 30, 10))[0]
    life: list[tuple[int, dict[str, object]]] = [
        (created, {"type": "created", "bcu": bcu, "opening_code": opening, "caller": caller}),
        (graded, {"type": "graded", "grade": grade}),
        (
            assigned,
            {"type": "resource_assigned", "resource_id": resource, "officers": rng.randint(1, 2)},
        ),
        (arrived, {"type": "resource_arrived", "resource_id": resource}),
        (cleared, {"type": "resource_cleared", "resource_id": resource}),
        (closed, {"type": "closed", "closing_code": "ATTENDED_NO_OFFENCE"}),
    ]
    out = []
    for seq, (at, fields) in enumerate(life):
        event: dict[str, object] = {
            "schema": SCHEMA_ID,
            "event_id": f"bn{n:07d}.{seq}",
            "incident_id": incident_id,
            "occurred_at": _stamp(at),
            **fields,
        }
        # A summary on some created events keeps message sizes like the real feed's.
        if seq == 0 and rng.random() < 0.12:
            event["summary"] = rng.choice(SUMMARIES)
        out.append((at, event))
    return out


def generate(count: int, days: float, seed: int = 1) -> BenchEvents:
    """Exactly ``count`` events; creations evenly spaced over ``days`` days of event time.

    Sent in event-time order (as a replay would), so no event is too late for its
    partition's watermark. The last incidents may be cut short: they stay open.
    """
    if count < 1 or days <= 0:
        raise ValueError("count must be positive and days greater than zero")
    rng = Random(f"bench:{seed}")
    incidents = -(-count // EVENTS_PER_INCIDENT)
    span_s = int(days * 86400)
    rows: list[tuple[int, int, int, dict[str, object]]] = []
    for n in range(incidents):
        created = START_S + n * span_s // incidents
        for seq, (at, event) in enumerate(incident_life(n, created, rng)):
            rows.append((at, n, seq, event))
    rows.sort(key=lambda row: row[:3])
    out = BenchEvents(incidents=incidents, days=days)
    for at, _, _, event in rows[:count]:
        out.keys.append(str(event["incident_id"]).encode())
        out.values.append(json.dumps(event, separators=(",", ":")).encode())
        out.event_ids.append(str(event["event_id"]))
        out.occurred_ms.append(at * 1000)
    return out
