"""The replay's fast reading against the reference reading it must equal, line for line.

The reference is the replay's reading before the fast path, written out here: the file as
UTF-8 text (undecodable bytes replaced) in Python's text mode, blank lines passed over,
each line through json.loads, and the event sent as json.dumps(doc, separators=(",", ":"))
writes it. Whatever the bytes, the fast path (scan, whole-chunk checks, the kept file or
a second reading, per-line orjson) must give the same records, skipped line numbers and
reasons, keys, event times and bytes to send.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import ContractError
from schemas.contract import parse_timestamp_ms
from streams.replay import chunks, reader, scan
from streams.replay.reader import Batch, Record, Skipped, encode, read_records
from streams.replay.timing import format_ms

# One item of a reading: ("R", line, key, bytes sent unshifted, bytes sent shifted 1 h) or
# ("S", line, reason).
Item = tuple[Any, ...]
HOUR_MS = 3_600_000


def _reference_line(number: int, line: str) -> Item:
    try:
        doc = json.loads(line)
    except (json.JSONDecodeError, RecursionError):
        return ("S", number, "not JSON")
    if not isinstance(doc, dict):
        return ("S", number, "not a JSON object")
    incident = doc.get("incident_id")
    if not isinstance(incident, str) or not incident:
        return ("S", number, "no incident_id")
    occurred = doc.get("occurred_at")
    if not isinstance(occurred, str):
        return ("S", number, "no occurred_at")
    try:
        occurred_ms = parse_timestamp_ms(occurred)
    except ContractError:
        return ("S", number, "bad occurred_at")
    shifted = {**doc, "occurred_at": format_ms(occurred_ms + HOUR_MS)}
    return (
        "R",
        number,
        incident.encode(),
        json.dumps(doc, separators=(",", ":")).encode(),
        json.dumps(shifted, separators=(",", ":")).encode(),
        occurred_ms,
    )


def reference(path: Path) -> list[Item]:
    raw = gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")  # noqa: SIM115
    with io.TextIOWrapper(raw, encoding="utf-8", errors="replace") as lines:
        return [
            _reference_line(number, line)
            for number, line in enumerate(lines, start=1)
            if line.strip()
        ]


def _items(found: Iterator[Record | Batch | Skipped]) -> Iterator[Item]:
    for item in found:
        if isinstance(item, Batch):
            for offset, (key, value) in enumerate(zip(item.keys, item.values, strict=True)):
                yield ("R", item.first + offset, key, value)
        elif isinstance(item, Skipped):
            yield ("S", item.line, item.reason)
        else:
            shifted = encode(item, HOUR_MS)
            yield ("R", item.line, item.key, encode(item, 0), shifted, item.occurred_ms)


def _unshifted(items: list[Item]) -> list[Item]:
    return [item[:4] if item[0] == "R" else item for item in items]


def assert_reads_as_reference(path: Path) -> None:
    want = reference(path)
    records = [item for item in want if item[0] == "R"]
    # Shifted or paced: no scan, every line read one by one.
    assert list(_items(read_records(path))) == want
    for times in (False, True):
        found = scan.scan(path, times)
        assert found.count == len(records)
        if times and records:
            assert found.first_ms == min(r[5] for r in records)
            assert found.last_ms == max(r[5] for r in records)
        # Unshifted and unpaced: the scan's marked lines come as they are.
        assert _unshifted(list(_items(read_records(path, found)))) == _unshifted(want)


@pytest.fixture
def small_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of a few bytes and whole-chunk checks from 2 lines: every boundary and path
    (chunk split mid-line, halving, runs of marked lines) is taken on small files."""
    monkeypatch.setattr(reader, "CHUNK", 97)
    monkeypatch.setattr(reader, "BULK_LEAST", 2)
    monkeypatch.setattr(scan, "BULK_LEAST", 2)


def _event(n: int, **fields: object) -> dict[str, object]:
    return {
        "schema": "cad.incident-event/1",
        "event_id": f"e{n}",
        "incident_id": f"CAD/2023/{n:05d}",
        "type": "created",
        "occurred_at": f"2023-11-01T10:{n % 60:02d}:00Z",
        "bcu": "SE",
        **fields,
    }


def _compact(doc: object) -> str:
    return json.dumps(doc, separators=(",", ":"))


# Lines that each exercise one way the fast path could part from the reference.
ODD_LINES = [
    "",
    "   ",
    "\x1c",  # whitespace to str.strip, not to JSON
    "\u00a0",
    "{oops",
    "[1, 2]",
    '"just a string"',
    "null",
    _compact({"occurred_at": "2023-11-01T10:00:00Z"}),
    _compact({"incident_id": "", "occurred_at": "2023-11-01T10:00:00Z"}),
    _compact({"incident_id": 7, "occurred_at": "2023-11-01T10:00:00Z"}),
    _compact({"incident_id": "A"}),
    _compact({"incident_id": "A", "occurred_at": 1698832800}),
    _compact({"incident_id": "A", "occurred_at": "noon"}),
    _compact({"incident_id": "A", "occurred_at": "2023-02-30T10:00:00Z"}),
    _compact({"incident_id": "A", "occurred_at": "2023-11-01T24:00:00Z"}),
    _compact({"incident_id": "A", "occurred_at": "2023-11-01T10:00:60Z"}),
    _compact({"incident_id": "A", "occurred_at": "2023-11-01T10:00:00+24:00"}),
    _compact({"incident_id": "A", "occurred_at": "2023-11-01T10:00:00.123456789+01:00"}),
    _compact({"incident_id": "A", "occurred_at": "2023-11-01t10:00:00z"}),
    _compact({"incident_id": "A", "occurred_at": "2023-11-01T10:00:00-00:00"}),
    _compact({"incident_id": "A", "occurred_at": "2023-11-01T10:00:00Z\n2023-11-01T10:00:00Z"}),
    json.dumps(_event(1)),  # spaces after , and :
    " " + _compact(_event(2)) + " ",
    _compact(_event(3, summary="caf\u00e9 \U0001f600")),  # escaped by json.dumps
    json.dumps(_event(4, summary="caf\u00e9"), ensure_ascii=False),  # UTF-8 as it is
    _compact(_event(5, summary='tab\there, quote" and back\\slash')),
    _compact(_event(6, summary="del\x7f")),
    _compact(_event(7, summary="del\x7f")).replace("\\u007f", "\x7f"),
    _compact(_event(8, ratio=0.00001)),  # json writes 1e-05, orjson 0.00001
    _compact(_event(9, ratio=1.5)),
    _compact(_event(10, big=18446744073709551616)),
    _compact(_event(11, nested={"a": [1, 2, {"b": None}]})),
    _compact(_event(12, flag=True, nothing=None, officers=-3)),
    _compact(_event(13, **{"occurred\u005fat2": "x"})),
    '{"incident_id":"A","incident_id":"B","occurred_at":"2023-11-01T10:00:00Z"}',
    '{"incident_id":"A","occurred_at":"2023-11-01T10:00:00Z","n":NaN}',
    '{"incident_id":"A","occurred_at":"2023-11-01T10:00:00Z","s":"\\ud800"}',
    '{"incident_id":"A\\"incident_id\\":\\"B","occurred_at":"2023-11-01T10:00:00Z"}',
    '{"x\\"incident_id":"C","incident_id":"A","occurred_at":"2023-11-01T10:00:00Z"}',
    '{"incident_id":"A","occurred_at":"2023-11-01T10:00:00Z","n":-0}',
    '{"incident_id":"A","occurred_at":"2023-11-01T10:00:00Z","n":1E2}',
    '{"incident_id":"A","occurred_at":"2023-11-01T10:00:00Z","z":"{[}]"}',
    '{"incident_id":"A","occurred_at":"2023-11-01T10:00:00Z","ratio":0.00001}',  # as orjson
    "[" * 3000 + "]" * 3000,
    # Deeper than json reads (a RecursionError), not than orjson reads (1024 levels).
    '{"incident_id":"A","occurred_at":"2023-11-01T10:00:00Z","d":' + "[" * 1010 + "]" * 1010 + "}",
    '{"incident_id":"A","occurred_at":"2023-11-01T10:00:00Z","d":' + "[" * 50 + "]" * 50 + "}",
]
ODD_BYTES = [
    b"\xef\xbb\xbf" + _compact(_event(20)).encode(),  # a byte order mark
    _compact(_event(21, summary="\u00e9")).encode().replace(b"\\u00e9", b"\xe9"),  # not UTF-8
    _compact(_event(22)).encode() + b"\r",  # a CRLF line end
    _compact(_event(23)).encode()[:40] + b"\r" + _compact(_event(23)).encode()[40:],
    b"\r" + _compact(_event(24)).encode(),
    b"\r\r",
    _compact(_event(25)).encode() + b"\r\r",
]


def _write(path: Path, body: bytes) -> Path:
    path.write_bytes(gzip.compress(body) if path.suffix == ".gz" else body)
    return path


@pytest.mark.parametrize("name", ["f.jsonl", "f.jsonl.gz"])
@pytest.mark.parametrize("kept", [True, False])
def test_every_odd_line_reads_as_the_reference_reads_it(
    name: str, kept: bool, tmp_path: Path, small_pieces: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not kept:
        monkeypatch.setattr(scan, "KEEP_BYTES", 0)
    good = [_compact(_event(n)).encode() for n in range(100, 140)]
    odd = [line.encode() for line in ODD_LINES] + ODD_BYTES
    # Runs of good lines with the odd ones between: whole chunks pass, are halved, fail.
    lines = good[:10] + odd[:20] + good[10:30] + odd[20:] + good[30:]
    path = _write(tmp_path / name, b"\n".join(lines))  # no line end after the last
    assert_reads_as_reference(path)


def test_a_clean_file_goes_in_whole_batches_sent_as_written(tmp_path: Path) -> None:
    lines = [_compact(_event(n)).encode() for n in range(500)]
    path = _write(tmp_path / "clean.jsonl.gz", b"\n".join(lines) + b"\n")
    found = scan.scan(path, times=False)
    assert found.count == 500 and found.kept is not None
    [batch] = list(read_records(path, found))
    assert isinstance(batch, Batch)
    assert batch.values == lines
    assert batch.keys == [f"CAD/2023/{n:05d}".encode() for n in range(500)]
    assert_reads_as_reference(path)


@pytest.mark.parametrize("kept", [True, False])
def test_a_file_of_crlf_lines_is_sent_without_the_cr(
    kept: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not kept:
        monkeypatch.setattr(scan, "KEEP_BYTES", 0)
    lines = [_compact(_event(n)).encode() for n in range(200)]
    path = _write(tmp_path / "crlf.jsonl", b"\r\n".join(lines) + b"\r\n")
    assert [item[3] for item in _items(read_records(path, scan.scan(path, False)))] == lines
    assert_reads_as_reference(path)


def test_a_line_longer_than_a_chunk_is_read_whole(tmp_path: Path, small_pieces: None) -> None:
    long = _compact(_event(1, summary="x" * 1000)).encode()
    path = _write(tmp_path / "long.jsonl", b"\n".join([long, long, b"{bad", long]))
    assert_reads_as_reference(path)


def test_a_file_changed_after_its_scan_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scan, "KEEP_BYTES", 0)  # read again to send
    path = _write(tmp_path / "f.jsonl", _compact(_event(1)).encode() + b"\n")
    found = scan.scan(path, times=False)
    _write(path, _compact(_event(1)).encode() + b"\n" + _compact(_event(2)).encode() + b"\n")
    with pytest.raises(reader.ReplayFileError, match="changed since"):
        list(read_records(path, found))


# Characters JSON escapes, that orjson and json write apart, that end lines, and others.
_TEXT = st.text(alphabet='ab{}[]":,\\ \t\r\n\u00e9\x7f\x00\U0001f600', max_size=12)
_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    _TEXT,
    st.lists(st.integers(), max_size=2),
)
_TIME = st.one_of(
    st.sampled_from(["2023-11-01T10:00:00Z", "2023-11-01T10:00:00+01:00", "2024-02-29T23:59:59Z"]),
    st.from_regex(
        r"\A[0-9]{4}-[01][0-9]-[0-3][0-9][Tt][0-2][0-9]:[0-6][0-9]:[0-6][0-9](\.[0-9]{1,4})?([Zz]|[+-][0-2][0-9]:[0-6][0-9])\Z"
    ),
)


def _as_orjson_writes(doc: dict[str, object]) -> str:
    """Floats as orjson writes them (0.00001 where json writes 1e-05)."""
    try:
        return orjson.dumps(doc).decode()
    except orjson.JSONEncodeError:  # an integer beyond 64 bits
        return _compact(doc)


@st.composite
def _line(draw: st.DrawFn) -> bytes:
    doc: dict[str, object] = {}
    if draw(st.booleans()):
        doc["incident_id"] = draw(st.one_of(_TEXT, st.integers()))
    doc.update(draw(st.dictionaries(st.sampled_from(["a", "b", "summary"]), _VALUE, max_size=3)))
    if draw(st.integers(0, 9)):
        doc["occurred_at"] = draw(_TIME)
    style = draw(st.sampled_from(["compact", "spaced", "utf8", "orjson"]))
    text = {
        "compact": _compact(doc),
        "spaced": json.dumps(doc),
        "utf8": json.dumps(doc, ensure_ascii=False, separators=(",", ":")),
        "orjson": _as_orjson_writes(doc),
    }[style]
    raw = text.encode("utf-8", errors="surrogatepass")
    if draw(st.integers(0, 5)) == 0:  # a few damaged lines
        cut = draw(st.integers(0, len(raw)))
        raw = raw[:cut] + draw(st.sampled_from([b"", b"\r", b"\xff", b"}", b" "])) + raw[cut:]
    return raw


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=st.lists(_line(), max_size=12), end=st.sampled_from([b"", b"\n", b"\r\n"]))
def test_any_file_reads_as_the_reference_reads_it(
    lines: list[bytes], end: bytes, tmp_path: Path, small_pieces: None
) -> None:
    path = _write(tmp_path / "any.jsonl", b"\n".join(lines) + end)
    assert_reads_as_reference(path)


def test_whole_chunks_pass_only_lines_json_writes_as_they_are() -> None:
    good = [_compact(_event(n)).encode() for n in range(3)]
    incidents, times = chunks.sendable(good) or ([], [])
    assert incidents == [f"CAD/2023/{n:05d}" for n in range(3)]
    assert times == [f"2023-11-01T10:{n:02d}:00Z" for n in range(3)]
    for odd in [*ODD_LINES, *(b.decode("utf-8", "replace") for b in ODD_BYTES)]:
        line = odd.encode("utf-8", errors="surrogatepass")
        if chunks.sendable([*good, line]) is None:
            continue
        # Passed: the reference reads it as an event and sends exactly these bytes.
        item = _reference_line(1, odd)
        assert item[0] == "R" and item[3] == line, odd
