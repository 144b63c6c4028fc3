"""The worker's copy of the source registry, and when to read it again. Pure.

The applier reads ``<prefix>:registry`` every time its periodic check runs (every
``demandmon.state.registry.REFRESH_EVERY_S``, 5 s), and sooner when a batch names a
source it does not know, so that a replay registered a moment ago is accepted on its
first message: at most one read per batch (one SMEMBERS), so a producer sending
unregistered names costs little and never holds a batch up.

A message whose Kafka timestamp is well before the last read cannot belong to a source
registered after it (`demandmon replay` registers before it sends), so such messages
never cause a read: catching up on a backlog stays fast.
"""

from __future__ import annotations

from collections.abc import Iterable

from agents.batch import Consumed, source_of
from schemas.vocabulary import LIVE_SOURCE, UNKNOWN_SOURCE

CLOCK_SKEW_MS = 2000  # how far a producer's clock may be behind the worker's


class SourceRegistry:
    def __init__(self) -> None:
        self.names: frozenset[str] = frozenset()
        self.read_at: float | None = None  # monotonic time the last read started
        self.read_at_ms: int | None = None  # wall clock of the same, ms

    def could_be_newer(self, messages: Iterable[Consumed]) -> bool:
        """Whether some message names a source that is not known but may have been
        registered since the last read (never read, no timestamp, or a recent one)."""
        for msg in messages:
            source = source_of(msg.headers)
            if source is None or source == LIVE_SOURCE or source in self.names:
                continue
            if self.read_at_ms is None or msg.timestamp_ms is None:
                return True
            if msg.timestamp_ms >= self.read_at_ms - CLOCK_SKEW_MS:
                return True
        return False

    def update(self, names: Iterable[str], started: float, started_ms: int) -> None:
        """Take a read that started at ``started`` (monotonic) and ``started_ms`` (wall)."""
        self.names = frozenset(names)
        self.read_at, self.read_at_ms = started, started_ms

    def keeps(self, source: str) -> bool:
        """Whether ``source`` has state the worker writes: ``live``, ``unknown`` (where
        rejections of unusable or unregistered sources are counted) or registered."""
        return source in (LIVE_SOURCE, UNKNOWN_SOURCE) or source in self.names
