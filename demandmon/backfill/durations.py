"""Prometheus-style durations (``52w``, ``3d``, ``90m``, ``1h30m``), pure."""

from __future__ import annotations

import re
from typing import Final

# Units largest first, each at most once, as Prometheus' own duration parser takes them
# (a year is 365 days there too).
_UNIT_MS: Final = {
    "y": 365 * 86_400_000,
    "w": 7 * 86_400_000,
    "d": 86_400_000,
    "h": 3_600_000,
    "m": 60_000,
    "s": 1000,
    "ms": 1,
}
_DURATION: Final = re.compile("".join(rf"(?:(?P<{u}>[0-9]+){u})?" for u in _UNIT_MS))


class DurationError(ValueError):
    """Not a Prometheus duration: the message is the one line to print."""


def parse_duration_ms(text: str) -> int:
    """``text`` in milliseconds; a DurationError names what is wrong."""
    match = _DURATION.fullmatch(text)
    if text == "0":
        return 0
    if not text or match is None:
        raise DurationError(
            f"bad duration {text!r}: use Prometheus' form, numbers with units y w d h m s "
            "ms largest first (52w, 3d, 90m, 1h30m)"
        )
    return sum(int(n) * _UNIT_MS[unit] for unit, n in match.groupdict().items() if n)


def format_duration(ms: int) -> str:
    """``ms`` back in that form (``52w``, ``1h30m``), for messages."""
    if ms == 0:
        return "0s"
    parts = []
    for unit, size in _UNIT_MS.items():
        if unit == "y":
            continue  # weeks read better for the shifts people use (52w, 104w)
        n, ms = divmod(ms, size)
        if n:
            parts.append(f"{n}{unit}")
    return "".join(parts)
