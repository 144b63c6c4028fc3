"""Test oracle: a plain-Python recount of every figure, written from docs/semantics.md.

Deliberately unlike the streaming pipeline: the oracle keeps every applied event of an
incident and works each figure out from the whole list when asked (latest category by
``(occurred_at, arrival)``, earliest assignment per resource, ...). The only streaming
parts are what the semantics make order-dependent: duplicates (first arrival wins),
lateness (against the watermark when the event arrives) and the retention horizon
(incidents dropped once they fall 35 days behind the watermark; the ``all`` window keeps
what they counted, orphans are counted and forgotten).
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

Event = dict[str, Any]
Key = tuple[str, tuple[tuple[str, str], ...]]

HORIZON_S = 35 * 86400
WINDOWS = {"1h": 1, "24h": 24, "7d": 168, "28d": 672}
TARGET_S = {"I": 900, "S": 3600}
HANDOVER_BREACH_S = 3600

CATEGORY_BY_CODE = {
    "CONCERN_FOR_SAFETY": "concern_for_safety",
    "MENTAL_HEALTH": "mental_health",
    "AWOL_MENTAL_HEALTH": "mental_health",
    "WALKOUT_HEALTHCARE": "mental_health",
    "VULNERABLE_PERSON": "vulnerable",
    "MISSING_VULNERABLE": "vulnerable",
    "COLLAPSE": "collapse_illness_injury_trapped",
    "ILLNESS": "collapse_illness_injury_trapped",
    "INJURY": "collapse_illness_injury_trapped",
    "TRAPPED": "collapse_illness_injury_trapped",
}
RCRP_LABELS = {
    "concern_for_safety": "Concern for Safety",
    "mental_health": "Mental Health",
    "vulnerable": "Vulnerable",
    "collapse_illness_injury_trapped": "Collapse/Illness/Inj/Trapped",
    "welfare_check_partner": "Welfare Check Request (partners only)",
}
BCUS = ("AW", "AS", "CE", "CN", "EA", "NA", "NE", "NW", "SE", "SN", "SW", "WA")


def category_of(code: str, caller: str) -> str:
    if code == "WELFARE_CHECK":
        return "concern_for_safety" if caller == "public" else "welfare_check_partner"
    return CATEGORY_BY_CODE.get(code, "not_rcrp")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch(text: str) -> float:
    """RFC 3339 to epoch seconds, truncated to whole milliseconds like the contract model
    (so two times within the same millisecond are a tie)."""
    moment = datetime.fromisoformat(text.replace("z", "Z"))
    return ((moment - _EPOCH) // timedelta(milliseconds=1)) / 1000


@dataclass
class _Incident:
    gen: int
    events: list[tuple[float, int, Event]] = field(default_factory=list)  # (t, arrival, ev)
    latest: float = -math.inf
    created_at: float | None = None


@dataclass
class Figures:
    """What one created incident counts, worked out from all its events."""

    created_at: float
    bucket: int
    bcu: str
    category: str
    grade: str
    deployed: bool
    attended_in_target: bool
    officer_s: float
    open: bool
    first_arrival: float | None
    detained: bool
    in_custody: bool
    handover_wait_s: float | None  # known only with arrival at the place of safety
    handover_at: float | None  # the (earliest) handover of a detention
    detention_s: float | None  # handover - detained, once per detention
    s136_officer_s: float  # officer_s of an incident with a detention (else 0)


def figures(inc: _Incident) -> Figures:
    assert inc.created_at is not None
    by_type: dict[str, list[tuple[float, int, Event]]] = defaultdict(list)
    for item in inc.events:
        by_type[item[2]["type"]].append(item)
    first_created = min(by_type["created"], key=lambda it: it[1])[2]
    caller = first_created["caller"]
    coded = by_type["created"] + by_type["classified"]
    code = max(coded, key=lambda it: (it[0], it[1]))[2]["opening_code"]
    graded = by_type["graded"] + [it for it in by_type["created"] if "grade" in it[2]]
    grade = max(graded, key=lambda it: (it[0], it[1]))[2]["grade"] if graded else "U"

    officer_s = 0.0
    for rid in sorted({it[2]["resource_id"] for it in by_type["resource_assigned"]}):
        assigned = [it for it in by_type["resource_assigned"] if it[2]["resource_id"] == rid]
        cleared = [it[0] for it in by_type["resource_cleared"] if it[2]["resource_id"] == rid]
        if cleared:
            t0, _, first = min(assigned, key=lambda it: (it[0], -it[1]))
            officer_s += max(0.0, max(cleared) - t0) * int(first["officers"])
    arrivals = [it[0] for it in by_type["resource_arrived"]]
    first_arrival = min(arrivals) if arrivals else None
    in_target = (
        grade in TARGET_S
        and first_arrival is not None
        and first_arrival - inc.created_at <= TARGET_S[grade]
    )

    def earliest(kind: str) -> float | None:
        times = [it[0] for it in by_type[kind]]
        return min(times) if times else None

    detained, at_pos, handover = (
        earliest("s136_detained"),
        earliest("s136_arrived_pos"),
        earliest("s136_handover"),
    )
    is_detention = detained is not None
    return Figures(
        created_at=inc.created_at,
        bucket=math.floor(inc.created_at / 3600) * 3600,
        bcu=first_created["bcu"],
        category=category_of(code, caller),
        grade=grade,
        deployed=bool(by_type["resource_assigned"]),
        attended_in_target=in_target,
        officer_s=officer_s,
        open=not (by_type["closed"] or by_type["cancelled"]),
        first_arrival=first_arrival,
        detained=is_detention,
        in_custody=is_detention and handover is None,
        handover_wait_s=(
            max(0.0, handover - at_pos)
            if is_detention and handover is not None and at_pos is not None
            else None
        ),
        handover_at=handover if is_detention else None,
        detention_s=(
            max(0.0, handover - detained) if detained is not None and handover is not None else None
        ),
        # Every unit's officers x (cleared - assigned), whatever the order of the events.
        s136_officer_s=officer_s if is_detention else 0.0,
    )


@dataclass
class _Stream:
    seen: set[str] = field(default_factory=set)
    watermark: float | None = None
    arrivals: int = 0
    applied: int = 0
    duplicates: int = 0
    too_late: int = 0
    orphaned: int = 0
    generations: int = 0
    incidents: dict[str, _Incident] = field(default_factory=dict)
    frozen: list[Figures] = field(default_factory=list)  # dropped at the horizon
    heap: list[tuple[float, int, str]] = field(default_factory=list)  # (drop key, gen, id)


def _labels(**labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


class Oracle:
    def __init__(self, horizon_s: int = HORIZON_S) -> None:
        self.horizon_s = horizon_s
        self._streams: dict[str, _Stream] = {}

    def _stream(self, source: str) -> _Stream:
        return self._streams.setdefault(source, _Stream())

    def feed(self, event: dict[str, object], source: str = "live") -> str:
        """Apply one event in arrival order: "applied", "duplicate" or "too_late"."""
        st = self._stream(source)
        event_id = str(event["event_id"])
        t = epoch(str(event["occurred_at"]))
        # Lateness before repeats: the monitor remembers event ids only within the
        # horizon (memory bounded by it), so a repeat of a long-gone event is too late.
        if st.watermark is not None and st.watermark - t > self.horizon_s:
            st.too_late += 1
            return "too_late"
        if event_id in st.seen:
            st.duplicates += 1
            return "duplicate"
        st.seen.add(event_id)
        st.applied += 1
        st.arrivals += 1
        iid = str(event["incident_id"])
        inc = st.incidents.get(iid)
        if inc is None:
            st.generations += 1
            inc = st.incidents[iid] = _Incident(gen=st.generations)
        inc.events.append((t, st.arrivals, dict(event)))
        if inc.created_at is None:
            if event["type"] == "created":
                inc.created_at = t
                heapq.heappush(st.heap, (t, inc.gen, iid))
            elif t > inc.latest:
                heapq.heappush(st.heap, (t, inc.gen, iid))
        inc.latest = max(inc.latest, t)
        st.watermark = t if st.watermark is None else max(st.watermark, t)
        self._sweep(st)
        return "applied"

    def _sweep(self, st: _Stream) -> None:
        """Drop incidents more than the horizon behind the watermark."""
        assert st.watermark is not None
        while st.heap and st.watermark - st.heap[0][0] > self.horizon_s:
            key, gen, iid = heapq.heappop(st.heap)
            inc = st.incidents.get(iid)
            if inc is None or inc.gen != gen:
                continue
            if (inc.created_at if inc.created_at is not None else inc.latest) != key:
                continue  # a fresher entry for this incident is in the heap
            del st.incidents[iid]
            if inc.created_at is None:
                st.orphaned += 1
            else:
                st.frozen.append(figures(inc))

    def watermark(self, source: str) -> float | None:
        st = self._streams.get(source)
        return None if st is None else st.watermark

    def rejected(self, source: str) -> dict[str, int]:
        st = self._stream(source)
        return {"too_late": st.too_late} if st.too_late else {}

    def orphaned(self, source: str) -> int:
        return self._stream(source).orphaned

    def pending(self, source: str) -> int:
        """Incidents held without a ``created`` (not yet orphaned)."""
        return sum(1 for i in self._stream(source).incidents.values() if i.created_at is None)

    def incident_figures(self, source: str) -> list[Figures]:
        st = self._stream(source)
        live = [figures(i) for i in st.incidents.values() if i.created_at is not None]
        return live + st.frozen

    def samples(self, source: str, end: float | None = None) -> dict[Key, float]:
        """The exporter's figures for ``source`` with windows ending at ``end`` (default:
        the watermark), zero-valued samples omitted."""
        st = self._streams.get(source)
        if st is None or st.watermark is None:
            return {}
        end = st.watermark if end is None else end
        end_bucket = math.floor(end / 3600) * 3600
        out: dict[Key, float] = defaultdict(float)

        def add(name: str, value: float, **labels: str) -> None:
            out[(name, _labels(source=source, **labels))] += value

        oldest_unattended_i: dict[str, float] = {}
        oldest_attended_i: dict[str, float] = {}
        last_long_wait: dict[str, float] = {}
        for f in [figures(i) for i in st.incidents.values() if i.created_at is not None]:
            if f.open:
                add("demand_open_incidents", 1, bcu=f.bcu, grade=f.grade)
                target = TARGET_S.get(f.grade)
                if target is not None and f.first_arrival is None and end - f.created_at > target:
                    add("demand_open_incidents_past_target", 1, bcu=f.bcu, grade=f.grade)
                if f.grade == "I":
                    oldest = (
                        oldest_attended_i if f.first_arrival is not None else oldest_unattended_i
                    )
                    oldest[f.bcu] = min(oldest.get(f.bcu, math.inf), f.created_at)
            if (
                f.handover_wait_s is not None
                and f.handover_wait_s > HANDOVER_BREACH_S
                and f.handover_at is not None
            ):
                last_long_wait[f.bcu] = max(last_long_wait.get(f.bcu, 0.0), f.handover_at)
            if f.in_custody:
                add("demand_s136_in_custody", 1, bcu=f.bcu)
            self._windowed(add, f, end_bucket)
        for f in st.frozen:
            self._windowed(add, f, end_bucket)
        for bcu, created_at in oldest_unattended_i.items():
            add("demand_oldest_unattended_igrade_age_seconds", end - created_at, bcu=bcu)
        for bcu, created_at in oldest_attended_i.items():
            add("demand_oldest_attended_open_igrade_age_seconds", end - created_at, bcu=bcu)
        for bcu, handover_at in last_long_wait.items():
            add("demand_s136_last_long_wait_handover_timestamp_seconds", handover_at, bcu=bcu)
        add("demand_stream_watermark_timestamp_seconds", st.watermark)
        add("demand_events_applied_total", st.applied)
        add("demand_events_duplicate_total", st.duplicates)
        add("demand_events_rejected_total", st.too_late, reason="too_late")
        add("demand_incidents_orphaned_total", st.orphaned)
        return {key: value for key, value in out.items() if value != 0}

    @staticmethod
    def _windowed(add: Callable[..., None], f: Figures, end_bucket: int) -> None:
        windows = [
            w
            for w, hours in WINDOWS.items()
            if end_bucket - (hours - 1) * 3600 <= f.bucket <= end_bucket
        ]
        for w in [*windows, "all"]:
            add("demand_rcrp_incidents", 1, bcu=f.bcu, category=f.category, window=w)
            if f.deployed:
                add("demand_rcrp_deployed_incidents", 1, bcu=f.bcu, category=f.category, window=w)
            if f.grade == "I":
                add("demand_igrade_incidents", 1, bcu=f.bcu, window=w)
            add("demand_graded_incidents", 1, bcu=f.bcu, grade=f.grade, window=w)
            if f.attended_in_target:
                add(
                    "demand_attended_within_target_incidents", 1, bcu=f.bcu, grade=f.grade, window=w
                )
            if f.detained:
                add("demand_s136_detentions", 1, bcu=f.bcu, window=w)
            if f.handover_wait_s is not None:
                add("demand_s136_handovers", 1, bcu=f.bcu, window=w)
                add("demand_s136_handover_wait_seconds", f.handover_wait_s, bcu=f.bcu, window=w)
                if f.handover_wait_s > HANDOVER_BREACH_S:
                    add("demand_s136_long_wait_handovers", 1, bcu=f.bcu, window=w)
            if f.detention_s is not None:
                add("demand_s136_detention_seconds", f.detention_s, bcu=f.bcu, window=w)
            if f.s136_officer_s:
                add("demand_s136_officer_time_seconds", f.s136_officer_s, bcu=f.bcu, window=w)
            if f.officer_s:
                add(
                    "demand_officer_time_seconds",
                    f.officer_s,
                    bcu=f.bcu,
                    category=f.category,
                    window=w,
                )


def total(samples: dict[Key, float], name: str, **match: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``match``."""
    return sum(
        value
        for (metric, labels), value in samples.items()
        if metric == name and all((k, v) in labels for k, v in match.items())
    )


def _rate(deployed: int, incidents: int) -> float:
    return round(deployed / incidents, 3) if incidents else 0.0


def evaluate_totals(
    events: Iterable[dict[str, object]], source_name: str = "replay"
) -> dict[str, Any]:
    """Feed a whole stream to a fresh oracle and report it in the shape of
    ``demandmon evaluate --format json`` (window ``all``), plus a few extra keys."""
    oracle = Oracle()
    for event in events:
        oracle.feed(event, source_name)
    s = oracle.samples(source_name)

    def count(name: str, **match: str) -> int:
        return round(total(s, name, window="all", **match))

    categories: list[dict[str, Any]] = []
    inc_total = dep_total = 0
    for cat, label in RCRP_LABELS.items():
        inc = count("demand_rcrp_incidents", category=cat)
        dep = count("demand_rcrp_deployed_incidents", category=cat)
        inc_total, dep_total = inc_total + inc, dep_total + dep
        categories.append(
            {
                "category": cat,
                "label": label,
                "incidents": inc,
                "deployed": dep,
                "deployment_rate": _rate(dep, inc),
            }
        )
    by_bcu = []
    for bcu in BCUS:
        inc = sum(count("demand_rcrp_incidents", category=c, bcu=bcu) for c in RCRP_LABELS)
        dep = sum(count("demand_rcrp_deployed_incidents", category=c, bcu=bcu) for c in RCRP_LABELS)
        by_bcu.append({"bcu": bcu, "incidents": inc, "deployed": dep})
    figs = oracle.incident_figures(source_name)
    buckets = [f.bucket for f in figs]
    return {
        "source": source_name,
        "period": {
            "from": _iso(min(buckets)) if buckets else None,
            "to": _iso(max(buckets) + 3600) if buckets else None,
        },
        "categories": categories,
        "total": {
            "incidents": inc_total,
            "deployed": dep_total,
            "deployment_rate": _rate(dep_total, inc_total),
        },
        "not_rcrp": {
            "incidents": count("demand_rcrp_incidents", category="not_rcrp"),
            "deployed": count("demand_rcrp_deployed_incidents", category="not_rcrp"),
        },
        "by_bcu": by_bcu,
        "igrade_incidents": count("demand_igrade_incidents"),
        "open_incidents": round(total(s, "demand_open_incidents")),
        "s136": {
            "detentions": count("demand_s136_detentions"),
            "handovers": count("demand_s136_handovers"),
            "handovers_over_60_min": count("demand_s136_long_wait_handovers"),
            "officer_hours": total(s, "demand_s136_officer_time_seconds", window="all") / 3600,
            "detention_hours": total(s, "demand_s136_detention_seconds", window="all") / 3600,
        },
        "officer_hours": total(s, "demand_officer_time_seconds", window="all") / 3600,
        "deployed_incidents": round(total(s, "demand_rcrp_deployed_incidents", window="all")),
        "events": {
            "applied": round(total(s, "demand_events_applied_total")),
            "duplicates": round(total(s, "demand_events_duplicate_total")),
            "rejected": {"invalid": 0, "too_late": oracle.rejected(source_name).get("too_late", 0)},
        },
    }


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
