"""Replay file reading and timing: pure parts."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from streams.replay.reader import Record, Skipped, encode, read_records
from streams.replay.timing import Pacer, parse_duration_ms, rebase_shift_ms


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
