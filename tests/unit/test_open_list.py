"""The open-incident list, pure: decoding records, oldest first, past-target marking at
its boundaries, the table and JSON shapes, the filters' allow-lists, and the bounded
oldest-N read across many sorted sets against a brute-force sort."""

from __future__ import annotations

import json
import random

import pytest

from demandmon.open_incidents import age_text, as_table
from demandmon.state.open_list import (
    MAX_LIMIT,
    ROW_KEYS,
    OpenIncident,
    OpenList,
    SetRead,
    as_json,
    check_filters,
    check_limit,
    decode,
    first_fetch,
    more_needed,
    oldest,
    rows,
)

END = 1_736_510_400_000  # 2025-01-10T12:00:00Z, ms
MIN = 60_000


def _inc(iid: str, age_ms: int, grade: str = "I", attended: bool = False) -> OpenIncident:
    return OpenIncident(END - age_ms, iid, "SE", grade, "mental_health", attended)


def _listing(*incidents: OpenIncident, total: int | None = None) -> OpenList:
    return OpenList(
        source="nov-2023",
        window_end_ms=END,
        live_end=False,
        total=len(incidents) if total is None else total,
        incidents=tuple(incidents),
    )


def test_decode_takes_category_by_caller_and_attended_from_first_arrival() -> None:
    raw = json.dumps(
        {
            "c": 5,
            "b": "SE",
            "cl": "q",
            "cp": "concern_for_safety",
            "cq": "welfare_check_partner",
            "g": "S",
            "fa": 9,
            "lt": 9,
        }
    )
    got = decode("INC/1", raw, "SE", "S")
    assert got == OpenIncident(5, "INC/1", "SE", "S", "welfare_check_partner", True)
    public = decode("INC-2", json.dumps({"c": 7, "cl": "p", "cp": "vulnerable"}), "AW", "U")
    assert public == OpenIncident(7, "INC-2", "AW", "U", "vulnerable", False)
    no_code = decode("INC-3", json.dumps({"c": 7, "cl": "p", "cp": ""}), "AW", "E")
    assert no_code is not None and no_code.category == "not_rcrp"


@pytest.mark.parametrize(
    ("iid", "raw", "bcu", "grade"),
    [
        ("INC-1", None, "SE", "I"),  # gone since the set was read
        ("INC-1", '{"c": 5, "x": 1}', "SE", "I"),  # closed since
        ("INC-1", '{"lt": 5}', "SE", "I"),  # no created event
        ("INC-1", "not json", "SE", "I"),
        ("INC-1", '{"c": 5, "cl": "p", "cp": "<script>"}', "SE", "I"),  # not a category
        ("INC 1", '{"c": 5}', "SE", "I"),  # not the contract's id alphabet
        ("x" * 65, '{"c": 5}', "SE", "I"),
        ("INC-1", '{"c": 5}', "XX", "I"),
        ("INC-1", '{"c": 5}', "SE", "Z"),
    ],
)
def test_decode_refuses_what_is_gone_or_not_fit_to_show(
    iid: str, raw: str | None, bcu: str, grade: str
) -> None:
    assert decode(iid, raw, bcu, grade) is None


def test_rows_oldest_first_with_exactly_the_fixed_keys() -> None:
    listing = _listing(_inc("b", 5 * MIN), _inc("c", 90 * MIN), _inc("a", 5 * MIN))
    got = rows(listing)
    assert [r["incident_id"] for r in got] == ["c", "a", "b"]  # ties: by id
    assert all(tuple(r) == ROW_KEYS for r in got)
    assert got[0]["age_seconds"] == 5400
    assert json.loads(as_json(listing)) == got


def test_past_target_follows_the_grade_target_and_attendance() -> None:
    cases = {
        "i-at-15": _inc("i-at-15", 15 * MIN),  # exactly the target: not past it
        "i-over": _inc("i-over", 15 * MIN + 1),
        "i-attended": _inc("i-attended", 3 * 60 * MIN, attended=True),
        "s-under": _inc("s-under", 59 * MIN, grade="S"),
        "s-at-60": _inc("s-at-60", 60 * MIN, grade="S"),
        "s-over": _inc("s-over", 60 * MIN + 1000, grade="S"),
        "e-old": _inc("e-old", 600 * MIN, grade="E"),
        "u-old": _inc("u-old", 600 * MIN, grade="U"),
    }
    got = {r["incident_id"]: r["past_target"] for r in rows(_listing(*cases.values()))}
    assert {k for k, v in got.items() if v} == {"i-over", "s-over"}


def test_age_is_whole_seconds_and_never_negative() -> None:
    ahead = OpenIncident(END + 120_000, "ahead", "SE", "I", "not_rcrp", False)
    got = rows(_listing(_inc("a", 1999), ahead))
    assert [(r["incident_id"], r["age_seconds"], r["past_target"]) for r in got] == [
        ("a", 1, False),
        ("ahead", 0, False),
    ]


def test_table_marks_past_target_and_notes_truncation() -> None:
    listing = _listing(_inc("INC-9", 20 * MIN), _inc("INC-8", 2 * MIN, attended=True), total=7)
    lines = as_table(listing).splitlines()
    assert lines[0].split() == ["incident", "bcu", "category", "grade", "age", "attended", "target"]
    assert lines[1].split() == ["INC-9", "SE", "mental_health", "I", "20m", "00s", "no", "PAST"]
    assert lines[2].split() == ["INC-8", "SE", "mental_health", "I", "2m", "00s", "yes"]
    assert lines[3] == (
        "7 open in nov-2023 as of 2025-01-10T12:00:00Z (the watermark); 1 shown past target (PAST)"
    )
    assert lines[4].startswith("showing the oldest 2 of 7;")
    assert len(lines) == 5
    assert "showing" not in as_table(_listing(_inc("a", 1)))


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (59, "59s"),
        (60, "1m 00s"),
        (3599, "59m 59s"),
        (3600, "1h 00m"),
        (86399, "23h 59m"),
        (86400, "1d 00h"),
        (200000, "2d 07h"),
    ],
)
def test_age_text(seconds: int, text: str) -> None:
    assert age_text(seconds) == text


def test_filters_are_the_vocabulary_allow_lists_and_never_echo_the_value() -> None:
    assert check_filters("live", None, None) is None
    assert check_filters("nov-2023", "SE", "U") is None
    for source, bcu, grade in [
        ("Live", None, None),
        ("", None, None),
        ("a" * 41, None, None),
        ("live\n", None, None),
        ("../x", None, None),
        ("live", "se", None),
        ("live", "SE'--", None),
        ("live", None, "i"),
        ("live", None, "IS"),
    ]:
        problem = check_filters(source, bcu, grade, "--")
        assert problem is not None and problem.startswith("--")
        for value in (source, bcu, grade):
            if value and value not in ("live",):
                assert value not in problem
    assert check_limit("1") == 1 and check_limit(str(MAX_LIMIT)) == MAX_LIMIT
    for raw in ("0", "-1", "", "1e3", str(MAX_LIMIT + 1), "9" * 40, " 5", "٣"):
        assert isinstance(check_limit(raw), str)


def _read_all(sets: list[list[tuple[int, str]]], limit: int) -> tuple[list[tuple[int, str]], int]:
    """The bounded read loop of open_read.read_open over in-memory sets; returns what was
    chosen and how many members were read in all."""
    reads = [SetRead(len(s), []) for s in sets]
    first = first_fetch([r.size for r in reads], limit)
    wanted = {i: min(first, r.size) for i, r in enumerate(reads) if r.size > 0}
    fetched = 0
    while wanted:
        for i, upto in wanted.items():
            new = sets[i][len(reads[i].members) : upto]
            fetched += len(new)
            reads[i].members.extend(new)
        wanted = more_needed(reads, limit)
    return oldest(reads, limit), fetched


@pytest.mark.parametrize("seed", range(40))
def test_bounded_read_gives_exactly_the_oldest_n(seed: int) -> None:
    rng = random.Random(seed)
    n_sets = rng.choice([1, 3, 60, 720])
    limit = rng.choice([1, 5, 50, 500])
    skew = rng.random() < 0.5  # one set holds most of the oldest
    sets = []
    for k in range(n_sets):
        size = rng.choice([0, 0, 1, 3, 20, 300]) if not (skew and k == 0) else 2000
        base = 0 if (skew and k == 0) else rng.randrange(0, 10_000)
        members = sorted((base + rng.randrange(0, 50_000), f"i{k}-{j}") for j in range(size))
        sets.append(members)
    want = sorted(m for s in sets for m in s)[:limit]
    got, fetched = _read_all(sets, limit)
    assert got == want
    # Bounded: never more than limit per set, nor more than the sets hold.
    assert fetched <= sum(min(len(s), limit) for s in sets)


def test_bounded_read_of_one_large_set_reads_only_the_first_limit() -> None:
    sets = [[(t, f"a{t:06d}") for t in range(100_000)], [(50, "b")], []]
    got, fetched = _read_all(sets, 100)
    assert got[:3] == [(0, "a000000"), (1, "a000001"), (2, "a000002")]
    assert (50, "b") in got and len(got) == 100
    assert fetched <= 101
