"""The message rules of contract v1, and bytes off the wire to a valid event.

Some rules are about the message rather than the event, and JSON Schema cannot express
them (it sees an already-parsed value): the text must be UTF-8 JSON without NaN/Infinity
or lone surrogate escapes, nest at most ``MAX_DEPTH`` levels, hold no number that no field
can take (an integer of more than ``MAX_INT_DIGITS`` digits, a float that overflows) and
never repeat a name inside an object. ``parse_json`` enforces them without recursing in
Python and raises nothing but ContractError, whatever the bytes.
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any, Final

import orjson

from schemas.contract import ContractError, IncidentEvent, validate_event
from schemas.vocabulary import MALFORMED_JSON, OVERSIZED, SCHEMA_VIOLATION

MAX_MESSAGE_BYTES: Final = 64 * 1024
# The contract's fields are scalars in one object (level 1); unknown fields, which are
# ignored, may nest a little. Deeper is refused before parsing.
MAX_DEPTH: Final = 5
# No field takes more (officers is 1-10); int() of a long digit string is slow or raises.
MAX_INT_DIGITS: Final = 20


class _Refused(Exception):
    """Raised from inside the JSON parser's hooks: the message breaks a message rule."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


_NOT_JSON: Final = "message is not valid UTF-8 JSON"
_NUMBER: Final = "holds a number no field can take"


def _parse_int(text: str) -> int:
    if len(text) - text.startswith("-") > MAX_INT_DIGITS:
        raise _Refused(_NUMBER)
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)  # linear even for very long text; overflow gives inf
    if math.isinf(value):
        raise _Refused(_NUMBER)
    return value


def _parse_constant(_: str) -> object:
    raise _Refused("holds NaN or Infinity, which JSON does not have")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc = dict(pairs)
    if len(doc) != len(pairs):
        raise _Refused("repeats a name inside an object")
    return doc


_DECODER: Final = json.JSONDecoder(
    object_pairs_hook=_object,
    parse_int=_parse_int,
    parse_float=_parse_float,
    parse_constant=_parse_constant,
)
# A string, from its opening quote to its closing one or, unterminated, to the end: every
# quote starts a match, so removing them all is linear whatever the input.
_STRINGS: Final = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
_BRACKETS: Final = b"[]{}"
_NOT_BRACKETS: Final = bytes(b for b in range(256) if b not in _BRACKETS)
_STEPS: Final = bytes.maketrans(_BRACKETS, b"\x01\xff\x01\xff")  # +1 / -1 as signed bytes
_SURROGATE_ESCAPE: Final = re.compile(rb"\\u[dD][89a-fA-F]")


def _too_deep(raw: bytes) -> bool:
    """Whether ``raw`` nests deeper than MAX_DEPTH; never recurses, linear in C."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return False  # the common case: too few brackets to nest that deep at all
    # Outside strings, the running sum of opens (+1) and closes (-1) is the depth. Up to
    # where a JSON parser would stop on an error it is exactly the parser's depth, so no
    # level the parser could enter is missed; past that point it may only overcount.
    steps = _STRINGS.sub(b"", raw).translate(_STEPS, _NOT_BRACKETS)
    return max(accumulate(memoryview(steps).cast("b")), default=0) > MAX_DEPTH


def _has_lone_surrogate(raw: bytes, doc: object) -> bool:
    if b"\\u" not in raw or not _SURROGATE_ESCAPE.search(raw):
        return False
    try:
        json.dumps(doc, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


# What a flat event's values are; anything else (a float, a nested value) takes the
# exact path below.
_SCALARS: Final = frozenset((str, int, bool, type(None)))
# A name followed by white space before its colon: the quick count below cannot see it.
_SPACED_NAME: Final = re.compile(rb'"\s+:')


def _quick(raw: bytes) -> dict[str, Any] | None:
    """orjson's reading of ``raw`` when it is certainly the exact parser's: a flat object
    of strings, integers, booleans and nulls, with no name repeated. orjson keeps the
    last of repeated names, so the names are counted in the text: every name ends in
    ``":`` (no white space before a colon), so fewer keys than ``":`` may be a repeat (or
    ``":`` inside a string) and goes the exact way. Integers it returns fit 64 bits, so
    have at most 20 digits; it refuses NaN, lone surrogates and bad UTF-8 (the exact path
    then says why). None: take the exact path."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if (
        type(doc) is dict
        and raw.count(b'":') == len(doc)
        and _SCALARS.issuperset(map(type, doc.values()))
        and not _SPACED_NAME.search(raw)
    ):
        return doc
    return None


def parse_json(raw: bytes, max_bytes: int = MAX_MESSAGE_BYTES) -> object:
    """Bytes to a JSON value under the message rules, or a ContractError (``oversized`` or
    ``malformed_json``); never any other exception, whatever the bytes."""
    if len(raw) > max_bytes:
        raise ContractError(OVERSIZED, f"message is over {max_bytes} bytes")
    if not _too_deep(raw):  # orjson would recurse up to 1024 levels
        doc = _quick(raw)
        if doc is not None:
            return doc
    try:
        # Decoded here, not by json.loads, which would also accept UTF-16 and UTF-32.
        text = raw.decode("utf-8")
        if _too_deep(raw):
            raise _Refused(f"nests deeper than {MAX_DEPTH} levels")
        doc = _DECODER.decode(text)
        if _has_lone_surrogate(raw, doc):
            raise _Refused("holds a lone surrogate escape, which is not valid text")
    except _Refused as exc:
        raise ContractError(MALFORMED_JSON, exc.detail) from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ContractError(MALFORMED_JSON, _NOT_JSON) from None
    except Exception:  # belt and braces: no message may knock the worker over
        raise ContractError(MALFORMED_JSON, "could not be parsed") from None
    return doc


def decode_event(raw: bytes, max_bytes: int = MAX_MESSAGE_BYTES) -> IncidentEvent:
    """Bytes off the wire to a valid event, or a ContractError naming the reason; never any
    other exception."""
    doc = parse_json(raw, max_bytes)
    try:
        return validate_event(doc)
    except ContractError:
        raise
    except Exception:  # belt and braces, as in parse_json
        raise ContractError(SCHEMA_VIOLATION, "event could not be validated") from None
