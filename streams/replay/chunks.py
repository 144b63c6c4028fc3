"""Lines of a replay file checked a whole chunk at a time: the fast path, in C where it can.

``sendable`` passes a list of lines only when every one of them passes the per-line
fast path of streams.replay.reader (``fast_doc``, a valid event time) and is sent as it
is (``canonical``): each test is the per-line one, applied to all the lines at once.
Whenever it says no, the caller goes through the lines one by one, which decides.
"""

from __future__ import annotations

from itertools import chain
from operator import itemgetter

import orjson

from streams.replay.timing import timestamps_valid

# Value types of a flat object that orjson and json decode alike (no float: the two may
# print one differently; no nesting: json recurses where orjson does not).
FLAT = frozenset({str, int, bool, type(None)})
_DICT = frozenset({dict})
_STR = frozenset({str})
_INCIDENT = itemgetter("incident_id")
_OCCURRED = itemgetter("occurred_at")
# What looking a field up in something else than an object of JSON raises.
_NOT_THERE = (KeyError, TypeError)


def sendable(lines: list[bytes]) -> tuple[list[str], list[str]] | None:
    """The incident ids and event times of ``lines`` (bytes, each without its line end)
    when each line is a flat JSON object in ASCII with a non-empty incident id and a valid
    event time, written exactly as ``json.dumps(doc, separators=(",", ":"))`` writes it;
    else None."""
    joined = b",".join(lines)
    # ASCII without DEL (orjson writes DEL as it is, json escapes it).
    if not lines or not joined.isascii() or b"\x7f" in joined:
        return None
    try:
        docs = list(map(orjson.loads, lines))
        incidents = list(map(_INCIDENT, docs))
        times = list(map(_OCCURRED, docs))
    except orjson.JSONDecodeError:
        return None
    except _NOT_THERE:
        return None
    if not _DICT.issuperset(map(type, docs)):
        return None
    if not FLAT.issuperset(map(type, chain.from_iterable(map(dict.values, docs)))):
        return None
    if not _STR.issuperset(map(type, incidents)) or "" in incidents:
        return None
    if not _STR.issuperset(map(type, times)) or not timestamps_valid(times):
        return None
    # Each line a whole JSON value, so the two lists are equal only if each line is
    # exactly what orjson writes for it: compact (so no \r, where text mode would end a
    # line), no name repeated, json's escapes.
    if orjson.dumps(docs) != b"[" + joined + b"]":
        return None
    return incidents, times


def keys(lines: list[bytes]) -> list[bytes] | None:
    """The incident id of each line as the Kafka key, for lines the scan marked as sent
    as they are (without a final \r); None if one is not as it was (the file changed)."""
    try:
        return list(map(str.encode, map(_INCIDENT, map(orjson.loads, lines))))
    except orjson.JSONDecodeError:
        return None
    except _NOT_THERE:
        return None
