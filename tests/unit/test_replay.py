"""Replay file reading and timing: pure parts (the fast reading: test_replay_reading.py)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import ContractError
from schemas.contract import parse_timestamp_ms
from streams.replay.reader import Record, Skipped, encode, read_records
from streams.replay.timing import (
    Pacer,
    format_ms,
    parse_duration_ms,
    rebase_shift_ms,
    timestamp_ms,
    timestamp_valid,
    timestamps_valid,
)


def test_durations() -> None:
    assert parse_duration_ms("52w") == 52 * 7 * 86_400_000
    assert parse_duration_ms("-1d") == -86_400_000
    assert parse_duration_ms("90m") == 5_400_000
    assert parse_duration_ms("250ms") == 250
    for bad in ("", "5", "1y", "1.5h", "h"):
        with pytest.raises(ValueError, match="bad duration"):
            parse_duration_ms(bad)


def test_rebase_makes_the_stream_end_now_or_start_now_when_paced() -> None:
    assert rebase_shift_ms(1000, 5000, 10_000, paced=False) == 5000
    assert rebase_shift_ms(1000, 5000, 10_000, paced=True) == 9000


def test_pacer_spreads_events_by_event_time() -> None:
    pacer = Pacer(speed=60, first_ms=0)
    assert pacer.due_after_s(60_000) == 1.0
    assert pacer.due_after_s(-5) == 0.0


def test_reader_keeps_good_lines_and_reports_bad_ones(tmp_path: Path) -> None:
    good = {"incident_id": "CAD/1", "occurred_at": "2023-11-01T10:00:00+01:00", "x": 1}
    lines = [
        json.dumps(good),
        "",
        "{oops",
        "[1, 2]",
        json.dumps({"occurred_at": "2023-11-01T10:00:00Z"}),
        json.dumps({"incident_id": "A", "occurred_at": "noon"}),
    ]
    path = tmp_path / "f.jsonl.gz"
    path.write_bytes(gzip.compress("\n".join(lines).encode()))
    items = list(read_records(path))
    assert isinstance(items[0], Record) and items[0].key == b"CAD/1"
    assert items[0].occurred_ms == 1698829200000
    assert [(i.line, i.reason) for i in items[1:] if isinstance(i, Skipped)] == [
        (3, "not JSON"),
        (4, "not a JSON object"),
        (5, "no incident_id"),
        (6, "bad occurred_at"),
    ]


def test_shift_rewrites_only_the_event_time() -> None:
    doc: dict[str, object] = {
        "incident_id": "A",
        "occurred_at": "2022-11-01T00:00:00Z",
        "event_id": "e",
    }
    record = Record(1, b"A", 1667260800000, doc)
    shifted = json.loads(encode(record, parse_duration_ms("52w")))
    assert shifted["occurred_at"] == "2023-10-31T00:00:00.000Z"
    assert shifted["event_id"] == "e"
    assert json.loads(encode(record, 0)) == doc


# Event times in and around the shapes the quick paths take (whole seconds, Z or an
# offset), with days, hours, minutes, seconds and offsets out of range, and other shapes.
_TIMES = st.one_of(
    st.from_regex(
        r"\A[0-9]{4}-[01][0-9]-[0-3][0-9][Tt][0-2][0-9]:[0-6][0-9]:[0-6][0-9]"
        r"(\.[0-9]{1,9})?([Zz]|[+-][0-2][0-9]:[0-6][0-9])\Z"
    ),
    st.text(max_size=30),
)


def _parsed(text: str) -> int | None:
    try:
        return parse_timestamp_ms(text)
    except ContractError:
        return None


@settings(max_examples=500, deadline=None)
@given(text=_TIMES)
def test_quick_event_times_read_as_the_contract_reads_them(text: str) -> None:
    want = _parsed(text)
    if want is None:
        with pytest.raises(ContractError):
            timestamp_ms(text)
    else:
        assert timestamp_ms(text) == want
    assert timestamp_valid(text) == (want is not None)


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(_TIMES, min_size=1, max_size=5))
def test_a_chunk_of_event_times_passes_only_if_each_one_is_valid(texts: list[str]) -> None:
    if timestamps_valid(texts):
        assert all(_parsed(text) is not None for text in texts)


def test_a_chunk_of_event_times_in_one_string_does_not_pass() -> None:
    good = "2023-11-01T10:00:00Z"
    assert timestamps_valid([good, good])
    assert not timestamps_valid([f"{good}\n{good}"])
    assert not timestamps_valid([good, "2023-02-29T10:00:00Z"])
    assert timestamps_valid(["2024-02-29T23:59:59+23:59", "2023-11-01T00:00:00-00:00"])
    assert not timestamps_valid([])


def test_shifted_times_are_written_in_utc_with_milliseconds() -> None:
    assert format_ms(1698832800123) == "2023-11-01T10:00:00.123Z"
