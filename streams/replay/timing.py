"""Replay timing, pure: durations, shifts, the pacing schedule and event times."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from operator import itemgetter

from schemas import ContractError
from schemas.contract import parse_timestamp_ms

_DURATION = re.compile(r"^(-?)(\d+)(ms|s|m|h|d|w)$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def parse_duration_ms(text: str) -> int:
    """``52w``, ``7d``, ``-1h``, ``90m``, ``30s``, ``250ms`` to milliseconds."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"bad duration {text!r}: use a number and one of ms s m h d w, e.g. 52w")
    sign = -1 if match.group(1) else 1
    return sign * int(match.group(2)) * _UNIT_MS[match.group(3)]


def rebase_shift_ms(first_ms: int, last_ms: int, now_ms: int, paced: bool) -> int:
    """Shift that makes a historical stream look live: paced replays start now (events
    then occur as they are sent at 1x); unpaced ones end now (nothing is in the future)."""
    return now_ms - (first_ms if paced else last_ms)


@dataclass(frozen=True)
class Pacer:
    """When to send an event at ``speed`` times real time, relative to the first one."""

    speed: float
    first_ms: int

    def due_after_s(self, occurred_ms: int) -> float:
        return max(0.0, (occurred_ms - self.first_ms) / 1000 / self.speed)


# -- event times ------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
# The common shape of an event time: whole seconds, in UTC (Z) or at an offset.
# datetime.fromisoformat reads it as parse_timestamp_ms does; other shapes (a fraction,
# a lowercase t or z) go through parse_timestamp_ms itself.
_WHOLE_SECONDS = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:Z|[+-][0-9]{2}:[0-9]{2})"
)
# The same with the time of day and the offset in range (as datetime wants them): only
# the day is left to check (``_day_valid``).
_IN_RANGE = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)
_VALID_SHAPE = re.compile(_IN_RANGE)
# Many of them, one a line: one match for a whole chunk of a file.
_VALID_SHAPES = re.compile(f"(?:{_IN_RANGE}\n)*{_IN_RANGE}")
_DAY = itemgetter(slice(0, 10))
# Days checked so far (a file spans few); emptied when a strange file fills it.
_DAYS: dict[str, bool] = {}
_DAYS_KEPT = 10_000


def timestamp_ms(text: str) -> int:
    """``parse_timestamp_ms`` (epoch milliseconds of an RFC 3339 time with an offset, or a
    ContractError), quicker for whole seconds."""
    if _WHOLE_SECONDS.fullmatch(text):
        try:
            return (datetime.fromisoformat(text) - _EPOCH) // _MS
        except ValueError:
            pass  # not a real date or time: parse_timestamp_ms says so
    return parse_timestamp_ms(text)


def _day_valid(day: str) -> bool:
    known = _DAYS.get(day)
    if known is None:
        if len(_DAYS) >= _DAYS_KEPT:
            _DAYS.clear()
        try:
            date.fromisoformat(day)
            known = True
        except ValueError:
            known = False
        _DAYS[day] = known
    return known


def timestamp_valid(text: str) -> bool:
    """Whether ``parse_timestamp_ms`` reads ``text``, without working out when it is."""
    if _VALID_SHAPE.fullmatch(text):
        return _day_valid(text[:10])
    try:
        parse_timestamp_ms(text)
    except ContractError:
        return False
    return True


def timestamps_valid(texts: list[str]) -> bool:
    """Whether ``parse_timestamp_ms`` reads every one of ``texts``: True only when all are
    whole seconds in range on real days (False may be wrong: then ask one by one)."""
    joined = "\n".join(texts)
    # As many lines as texts: no text holds a newline of its own.
    if joined.count("\n") != len(texts) - 1 or not _VALID_SHAPES.fullmatch(joined):
        return False
    return all(map(_day_valid, set(map(_DAY, texts))))


def format_ms(epoch_ms: int) -> str:
    """Epoch milliseconds as RFC 3339 in UTC with milliseconds: 2023-11-01T10:00:00.000Z."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
