"""Whether a scrape's figures are exact: equal to the oracle's recount (tests/oracle.py).

Checked after each scenario on the last scrape's text: ``r01`` (never written again),
``r19`` (the replay marked written between scrapes) and ``live``, which new events reach
between scrapes, so the exporter's reuse of what it read before is checked after new
writes. Live windows end at the wall clock, so live is recounted with windows ending at
the start and at the end of the scrape, and each figure must lie between the two (equal
when nothing crossed a boundary in between; ages grow by the scrape's duration).
"""

from __future__ import annotations

from collections.abc import Iterable

from exporter_load import REPLAYS, Event
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_families
from prometheus_client.parser import text_string_to_metric_families

from demandmon.exporter.families import BASELINE_METRICS
from schemas.vocabulary import LIVE_SOURCE
from tests.oracle import Oracle

Labels = tuple[tuple[str, str], ...]
SampleKey = tuple[str, Labels]
# Figures of the wall clock or of the exporter itself, not of the events.
WALL_CLOCK = {
    "demand_stream_window_end_timestamp_seconds",
    "demand_stream_last_processed_timestamp_seconds",
    "demand_exporter_scrape_duration_seconds",
    *BASELINE_METRICS,  # expected demand: not recounted by the oracle
}
CHECKED = (REPLAYS[0], REPLAYS[-1], LIVE_SOURCE)


def parse(text: str) -> dict[SampleKey, float]:
    samples: dict[SampleKey, float] = {}
    openmetrics = text.endswith("# EOF\n")
    for family in (om_families if openmetrics else text_string_to_metric_families)(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = float(s.value)
    return samples


def series_count(text: str) -> int:
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def _unsourced(samples: dict[SampleKey, float], source: str) -> dict[SampleKey, float]:
    """``source``'s non-zero event figures, keyed without the source label."""
    out = {}
    for (name, labels), value in samples.items():
        if ("source", source) in labels and value != 0 and name not in WALL_CLOCK:
            out[(name, tuple(kv for kv in labels if kv[0] != "source"))] = round(value, 6)
    return out


class Exactness:
    """The oracle fed what the benchmark applied: the stream (every replay holds the same)
    and live's events, to which ``applied`` adds what is written between scrapes."""

    def __init__(self, events: list[Event], live_events: list[Event], live: bool = True) -> None:
        """``live``: whether live is checked (not on state reused from an earlier run,
        whose live shards hold that run's further events too)."""
        self.checked = CHECKED if live else CHECKED[:-1]
        replay = Oracle()
        for e in events:
            replay.feed(e, "replay")
        self.replay_want = _unsourced(replay.samples("replay"), "replay")
        self.live = Oracle()
        self.applied(live_events if live else [])

    def applied(self, events: Iterable[Event]) -> None:
        for e in events:
            self.live.feed(e, LIVE_SOURCE)

    def wrong(self, text: str, start_s: float, end_s: float) -> dict[str, str]:
        """Per checked source that differs, how; empty when every figure is exact."""
        got = parse(text)
        out: dict[str, str] = {}
        for source in self.checked:
            mine = _unsourced(got, source)
            if source != LIVE_SOURCE:
                low = high = self.replay_want
            else:
                low = _unsourced(self.live.samples(LIVE_SOURCE, end=start_s), LIVE_SOURCE)
                high = _unsourced(self.live.samples(LIVE_SOURCE, end=end_s), LIVE_SOURCE)
            bad = []
            for key in sorted(set(mine) | set(low) | set(high)):
                a, b = sorted((low.get(key, 0.0), high.get(key, 0.0)))
                if not a - 1e-6 <= mine.get(key, 0.0) <= b + 1e-6:
                    bad.append(key)
            if bad:
                name, labels = bad[0]
                first = f"{name}{{{','.join(f'{k}={v}' for k, v in labels)}}}"
                shown = f"{mine.get(bad[0], 0.0):g} vs oracle {low.get(bad[0], 0.0):g}"
                out[source] = f"{len(bad)} series differ, e.g. {first} {shown}"
        return out
