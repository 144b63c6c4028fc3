"""Replay timing, pure: durations, shifts and the pacing schedule."""

from __future__ import annotations

import re
from dataclasses import dataclass

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
