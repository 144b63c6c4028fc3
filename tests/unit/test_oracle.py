"""Hand-made cases for the test oracle (tests/oracle.py), one rule of docs/semantics.md each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.oracle import Oracle, evaluate_totals, total

T0 = datetime(2023, 11, 6, 10, 0, tzinfo=UTC)
SRC = "t"


def at(base: datetime = T0, **delta: float) -> str:
    return (base + timedelta(**delta)).isoformat().replace("+00:00", "Z")


class Maker:
    """Builds contract-v1 events with unique ids."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, kind: str, incident: str, when: str, **fields: Any) -> dict[str, object]:
        self.n += 1
        event: dict[str, object] = {
            "schema": "cad.incident-event/1",
            "event_id": f"e{self.n}",
            "incident_id": incident,
            "type": kind,
            "occurred_at": when,
        }
        event.update(fields)
        return event

    def created(
        self, incident: str, when: str, code: str = "MENTAL_HEALTH", **kw: Any
    ) -> dict[str, object]:
        kw.setdefault("bcu", "SE")
        kw.setdefault("caller", "public")
        return self(kind="created", incident=incident, when=when, opening_code=code, **kw)


def run(*events: dict[str, object], source: str = SRC) -> Oracle:
    oracle = Oracle()
    for event in events:
        oracle.feed(event, source)
    return oracle


def value(oracle: Oracle, name: str, *, end: float | None = None, **labels: str) -> float:
    return total(oracle.samples(SRC, end), name, **labels)


def test_reclassification_moves_the_incident_whatever_the_arrival_order() -> None:
    ev = Maker()
    created = ev.created("A", at(), "MENTAL_HEALTH")
    reclass = ev("classified", "A", at(minutes=5), opening_code="ASB")
    for order in ([created, reclass], [reclass, created]):
        oracle = run(*order)
        assert value(oracle, "demand_rcrp_incidents", category="not_rcrp", window="all") == 1
        assert value(oracle, "demand_rcrp_incidents", category="mental_health") == 0
        assert value(oracle, "demand_rcrp_incidents", window="all") == 1


def test_an_older_reclassification_arriving_later_does_not_win() -> None:
    ev = Maker()
    oracle = run(
        ev.created("A", at(), "ASB"),
        ev("classified", "A", at(minutes=10), opening_code="VULNERABLE_PERSON"),
        ev("classified", "A", at(minutes=5), opening_code="COLLAPSE"),
    )
    assert value(oracle, "demand_rcrp_incidents", category="vulnerable", window="all") == 1
    assert value(oracle, "demand_rcrp_incidents", window="all") == 1


def test_regrade_moves_the_incident_between_grades() -> None:
    ev = Maker()
    oracle = run(
        ev.created("A", at(), grade="S"),
        ev("graded", "A", at(minutes=3), grade="I"),
        ev("graded", "A", at(minutes=1), grade="E"),  # older, arrives later: loses
    )
    assert value(oracle, "demand_igrade_incidents", window="all") == 1
    assert value(oracle, "demand_graded_incidents", grade="I", window="all") == 1
    assert value(oracle, "demand_graded_incidents", window="all") == 1
    assert value(oracle, "demand_open_incidents", grade="I") == 1


def test_ungraded_incident_is_grade_u() -> None:
    ev = Maker()
    oracle = run(ev.created("A", at()))
    assert value(oracle, "demand_graded_incidents", grade="U", window="1h") == 1
    assert value(oracle, "demand_open_incidents", grade="U") == 1


def test_follow_up_before_created_is_held_then_applied() -> None:
    ev = Maker()
    oracle = Oracle()
    assigned = ev("resource_assigned", "A", at(minutes=2), resource_id="SE01A", officers=2)
    assert oracle.feed(assigned, SRC) == "applied"
    assert value(oracle, "demand_rcrp_incidents") == 0  # not an incident yet
    assert oracle.pending(SRC) == 1
    oracle.feed(ev("resource_cleared", "A", at(minutes=92), resource_id="SE01A"), SRC)
    oracle.feed(ev.created("A", at(), "VULNERABLE_PERSON"), SRC)
    assert oracle.pending(SRC) == 0
    s = oracle.samples(SRC)
    labels = {"category": "vulnerable", "window": "all", "bcu": "SE"}
    assert total(s, "demand_rcrp_deployed_incidents", **labels) == 1
    assert total(s, "demand_officer_time_seconds", **labels) == 3 * 3600  # 1.5 h x 2 officers


def test_duplicate_with_different_fields_is_ignored() -> None:
    ev = Maker()
    created = ev.created("A", at(), "MENTAL_HEALTH")
    oracle = run(created)
    changed = dict(created, opening_code="ASB", bcu="NW")
    assert oracle.feed(changed, SRC) == "duplicate"
    assert oracle.feed(created, SRC) == "duplicate"
    s = oracle.samples(SRC)
    assert total(s, "demand_rcrp_incidents", category="mental_health", bcu="SE", window="all") == 1
    assert total(s, "demand_rcrp_incidents", window="all") == 1
    assert total(s, "demand_events_duplicate_total") == 2
    assert total(s, "demand_events_applied_total") == 1
    assert oracle.feed(created, "other") == "applied"  # sources are separate


def test_tie_on_occurred_at_later_arrival_wins() -> None:
    ev = Maker()
    same = at(minutes=5)
    a = ev("classified", "A", same, opening_code="ASB")
    b = ev("classified", "A", same, opening_code="COLLAPSE")
    created = ev.created("A", at())
    for order, expected in (([a, b], "collapse_illness_injury_trapped"), ([b, a], "not_rcrp")):
        oracle = run(created, *order)
        assert value(oracle, "demand_rcrp_incidents", category=expected, window="all") == 1
    # created and classified at the same time: whichever arrives later wins
    c = ev.created("B", at(), "ASB")
    d = ev("classified", "B", at(), opening_code="MENTAL_HEALTH")
    assert value(run(c, d), "demand_rcrp_incidents", category="mental_health") == 5  # 4 windows+all
    assert value(run(d, c), "demand_rcrp_incidents", category="not_rcrp") == 5


def test_welfare_check_category_depends_on_the_creating_caller() -> None:
    ev = Maker()
    oracle = run(
        ev.created("A", at(), "WELFARE_CHECK", caller="public"),
        ev.created("B", at(), "WELFARE_CHECK", caller="partner_health"),
        ev.created("C", at(), "ASB", caller="partner_social_care"),
        ev("classified", "C", at(minutes=1), opening_code="WELFARE_CHECK"),
    )
    assert value(oracle, "demand_rcrp_incidents", category="concern_for_safety", window="all") == 1
    assert (
        value(oracle, "demand_rcrp_incidents", category="welfare_check_partner", window="all") == 2
    )


def test_second_created_is_only_a_reclassification() -> None:
    ev = Maker()
    oracle = run(
        ev.created("A", at(), "ASB", bcu="SE", caller="public"),
        ev.created("A", at(hours=-5), "MENTAL_HEALTH", bcu="NW", caller="public"),  # older
        ev.created("A", at(minutes=5), "COLLAPSE", bcu="NW", caller="public", grade="I"),
    )
    s = oracle.samples(SRC)
    assert total(s, "demand_rcrp_incidents", window="all") == 1
    key = (
        "demand_rcrp_incidents",
        (
            ("bcu", "SE"),
            ("category", "collapse_illness_injury_trapped"),
            ("source", SRC),
            ("window", "1h"),
        ),
    )
    assert s[key] == 1  # first created keeps BCU and time (bucket 10:00)
    assert total(s, "demand_igrade_incidents", window="1h") == 1


def test_follow_up_bcu_is_ignored() -> None:
    ev = Maker()
    oracle = run(
        ev.created("A", at(), bcu="SE"),
        ev("resource_assigned", "A", at(minutes=1), bcu="AS", resource_id="AS01A", officers=1),
    )
    assert value(oracle, "demand_rcrp_deployed_incidents", bcu="SE", window="all") == 1
    assert value(oracle, "demand_rcrp_incidents", bcu="AS") == 0


def test_too_late_is_relative_to_the_watermark_on_arrival() -> None:
    ev = Maker()
    oracle = Oracle()
    assert oracle.feed(ev.created("A", at(days=40)), SRC) == "applied"
    assert oracle.feed(ev.created("B", at(days=5, seconds=-1)), SRC) == "too_late"
    assert oracle.feed(ev.created("C", at(days=5)), SRC) == "applied"  # exactly 35 days
    assert oracle.rejected(SRC) == {"too_late": 1}
    assert value(oracle, "demand_rcrp_incidents", window="all") == 2
    assert oracle.watermark(SRC) == (T0 + timedelta(days=40)).timestamp()
    # in arrival order the same early event is fine before the watermark moves on
    fresh = Oracle()
    assert fresh.feed(ev.created("B2", at(days=5, seconds=-1)), SRC) == "applied"
    assert fresh.feed(ev.created("A2", at(days=40)), SRC) == "applied"


def test_window_edges_are_whole_epoch_hours() -> None:
    ev = Maker()
    oracle = run(
        ev.created("ON", at()),  # 10:00:00 exactly: bucket 10:00
        ev.created("BEFORE", at(seconds=-1)),  # 09:59:59: bucket 09:00
        ev.created("DAY", at(hours=-23)),  # 11:00 the day before: oldest bucket of 24h
        ev.created("OLDER", at(hours=-24)),  # 10:00 the day before: outside 24h
    )
    end = T0.timestamp()
    assert value(oracle, "demand_rcrp_incidents", end=end, window="1h") == 1
    assert value(oracle, "demand_rcrp_incidents", end=end, window="24h") == 3
    assert value(oracle, "demand_rcrp_incidents", end=end, window="7d") == 4
    assert value(oracle, "demand_rcrp_incidents", end=end - 1, window="1h") == 1  # BEFORE only
    assert value(oracle, "demand_rcrp_incidents", end=end - 1, window="24h") == 3  # not ON
    assert value(oracle, "demand_rcrp_incidents", end=end - 1, window="all") == 4
    # default end: the watermark, 10:00:00
    assert value(oracle, "demand_rcrp_incidents", window="1h") == 1


def test_windows_across_midnight() -> None:
    ev = Maker()
    midnight = datetime(2023, 11, 7, tzinfo=UTC)
    oracle = run(
        ev.created("A", at(midnight, minutes=-30)),
        ev.created("B", at(midnight, minutes=10)),
        ev.created("C", at(midnight, hours=-23, minutes=-30)),  # 00:30 the day before
    )
    end = (midnight + timedelta(minutes=30)).timestamp()
    assert value(oracle, "demand_rcrp_incidents", end=end, window="1h") == 1
    assert value(oracle, "demand_rcrp_incidents", end=end, window="24h") == 2  # from 01:00


def test_windows_across_the_october_clock_change_are_utc_hours() -> None:
    ev = Maker()
    # 2023-10-29 01:00Z: 02:00 BST becomes 01:00 GMT; local 01:30 happens twice.
    oracle = run(
        ev.created("BST", "2023-10-29T01:30:00+01:00"),  # 00:30Z
        ev.created("GMT", "2023-10-29T01:30:00+00:00"),  # 01:30Z
        ev.created("EVE", "2023-10-28T02:30:00Z"),  # 23 h before the 01:00Z bucket
        ev.created("OUT", "2023-10-28T01:59:59Z"),  # 24 buckets back: outside 24h
        ev("closed", "OUT", "2023-10-29T01:59:59Z"),
    )
    end = datetime(2023, 10, 29, 1, 59, 59, tzinfo=UTC).timestamp()
    assert oracle.watermark(SRC) == end
    assert value(oracle, "demand_rcrp_incidents", window="1h") == 1
    assert value(oracle, "demand_rcrp_incidents", window="24h") == 3
    assert value(oracle, "demand_rcrp_incidents", window="7d") == 4


def test_resource_time_s136_open_and_targets() -> None:
    ev = Maker()
    oracle = run(
        ev.created("A", at(), grade="I"),
        ev("resource_assigned", "A", at(minutes=2), resource_id="U1", officers=1),
        ev("resource_assigned", "A", at(minutes=2), resource_id="U1", officers=2),  # tie: wins
        ev("resource_assigned", "A", at(minutes=30), resource_id="U1", officers=5),  # not earliest
        ev("resource_arrived", "A", at(minutes=14), resource_id="U1"),
        ev("resource_cleared", "A", at(hours=1, minutes=2), resource_id="U1"),
        ev("resource_cleared", "A", at(hours=2, minutes=2), resource_id="U1"),  # latest counts
        ev("s136_detained", "A", at(minutes=30)),
        ev("s136_arrived_pos", "A", at(hours=1), place="ED"),
        ev("s136_handover", "A", at(hours=2, minutes=1)),
        ev.created("B", at(hours=1), grade="S"),  # open, not attended, 61 min old at the end
        ev.created("C", at(hours=1), grade="I", code="ASB"),
        ev("cancelled", "C", at(hours=1, minutes=5)),
        ev.created("D", at(hours=1, minutes=30), grade="I", bcu="NW"),
        ev("s136_detained", "D", at(hours=1, minutes=40)),
        ev("resource_cleared", "D", at(hours=1, minutes=50), resource_id="NO_ASSIGN"),
        ev("closed", "D", at(hours=2, minutes=1, seconds=30)),
    )
    end = (T0 + timedelta(hours=2, minutes=2)).timestamp()  # the latest clearing
    s = oracle.samples(SRC)
    mh = {"bcu": "SE", "category": "mental_health", "window": "all"}
    assert total(s, "demand_officer_time_seconds", **mh) == 4 * 3600
    assert total(s, "demand_attended_within_target_incidents", grade="I", window="all") == 1
    assert total(s, "demand_s136_detentions", window="all") == 2
    assert total(s, "demand_s136_in_custody") == 1  # D: detained, no handover (closed or not)
    assert total(s, "demand_s136_in_custody", bcu="NW") == 1
    assert total(s, "demand_s136_handovers", window="all") == 1
    assert total(s, "demand_s136_long_wait_handovers", window="all") == 1  # 61 min
    assert total(s, "demand_s136_handover_wait_seconds", window="all") == 3660
    assert total(s, "demand_s136_detention_seconds", window="all") == 91 * 60
    # A's unit (2 officers x 2 h) is s136 officer time; D has no assigned unit.
    assert total(s, "demand_s136_officer_time_seconds", bcu="SE", window="all") == 4 * 3600
    assert total(s, "demand_s136_officer_time_seconds", window="all") == 4 * 3600
    handover = (T0 + timedelta(hours=2, minutes=1)).timestamp()
    last = "demand_s136_last_long_wait_handover_timestamp_seconds"
    assert total(s, last, bcu="SE") == handover
    assert total(s, "demand_open_incidents") == 2  # A (never closed) and B
    assert total(s, "demand_open_incidents_past_target", grade="S") == 1
    assert total(s, "demand_open_incidents_past_target", grade="I") == 0  # A was attended
    # A is open and was attended: attended-not-closed, never unattended.
    age = end - T0.timestamp()
    assert total(s, "demand_oldest_attended_open_igrade_age_seconds", bcu="SE") == age
    assert total(s, "demand_oldest_unattended_igrade_age_seconds") == 0
    assert total(s, "demand_rcrp_incidents", category="not_rcrp", window="all") == 1  # cancelled
    assert total(s, "demand_stream_watermark_timestamp_seconds") == end
    assert total(s, "demand_events_applied_total") == 17
    assert all(v != 0 for v in s.values())


def test_horizon_drops_orphans_and_old_incidents_but_all_keeps_them() -> None:
    ev = Maker()
    oracle = run(
        ev("resource_assigned", "ORPHAN", at(), resource_id="U1", officers=1),
        ev.created("OLD", at(minutes=1), grade="I"),
        ev.created("NEW", at(days=35, minutes=1)),  # OLD exactly 35 days behind: kept
    )
    assert oracle.orphaned(SRC) == 1  # ORPHAN's latest event is 35 d + 1 min behind
    assert value(oracle, "demand_open_incidents") == 2
    oracle.feed(ev.created("NEWER", at(days=35, minutes=2)), SRC)
    assert value(oracle, "demand_open_incidents") == 2  # OLD dropped from the open list
    assert value(oracle, "demand_rcrp_incidents", window="all") == 3  # but still counted
    assert value(oracle, "demand_igrade_incidents", window="all") == 1
    assert value(oracle, "demand_rcrp_incidents", window="28d") == 2
    assert oracle.orphaned(SRC) == 1


def test_evaluate_totals_shape() -> None:
    ev = Maker()
    report = evaluate_totals(
        [
            ev.created("A", at(), "CONCERN_FOR_SAFETY"),
            ev("resource_assigned", "A", at(minutes=1), resource_id="U1", officers=2),
            ev.created("B", at(), "CONCERN_FOR_SAFETY", bcu="NW"),
            ev.created("C", at(), "THEFT"),
        ],
        "nov",
    )
    first = report["categories"][0]
    assert first == {
        "category": "concern_for_safety",
        "label": "Concern for Safety",
        "incidents": 2,
        "deployed": 1,
        "deployment_rate": 0.5,
    }
    assert report["total"] == {"incidents": 2, "deployed": 1, "deployment_rate": 0.5}
    assert report["not_rcrp"] == {"incidents": 1, "deployed": 0}
    assert {"bcu": "NW", "incidents": 1, "deployed": 0} in report["by_bcu"]
    assert report["period"] == {"from": "2023-11-06T10:00:00Z", "to": "2023-11-06T11:00:00Z"}
    assert report["events"] == {
        "applied": 4,
        "duplicates": 0,
        "rejected": {"invalid": 0, "too_late": 0},
    }


def test_s136_officer_time_and_oldest_igrade_split_whatever_the_order() -> None:
    ev = Maker()
    events = [
        ev.created("A", at(), grade="I"),
        ev("resource_assigned", "A", at(minutes=5), resource_id="U1", officers=2),
        ev("resource_cleared", "A", at(hours=3, minutes=5), resource_id="U1"),
        ev("resource_assigned", "A", at(minutes=10), resource_id="U2", officers=1),
        ev("resource_cleared", "A", at(hours=1, minutes=10), resource_id="U2"),
        ev("s136_detained", "A", at(hours=2)),  # after U2 cleared: U2 counts all the same
        ev.created("B", at(minutes=20), grade="I"),  # open, never attended, younger than A
        ev.created("C", at(minutes=10), grade="I", bcu="NW"),
        ev("resource_arrived", "C", at(minutes=30), resource_id="U3"),  # attended, open
    ]
    end = (T0 + timedelta(hours=3, minutes=5)).timestamp()
    for order in (events, events[::-1], events[3:] + events[:3]):
        s = run(*order).samples(SRC)
        assert total(s, "demand_s136_officer_time_seconds", bcu="SE", window="all") == 7 * 3600
        assert total(s, "demand_officer_time_seconds", window="all") == 7 * 3600
        unattended = "demand_oldest_unattended_igrade_age_seconds"
        assert total(s, unattended, bcu="SE") == end - T0.timestamp()  # A: no unit arrived
        assert total(s, unattended, bcu="NW") == 0
        attended = "demand_oldest_attended_open_igrade_age_seconds"
        assert total(s, attended, bcu="NW") == end - (T0 + timedelta(minutes=10)).timestamp()
        assert total(s, attended, bcu="SE") == 0
        assert total(s, "demand_s136_last_long_wait_handover_timestamp_seconds") == 0
