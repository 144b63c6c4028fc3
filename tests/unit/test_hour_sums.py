"""Expected demand's hour sums (demandmon/baseline/read.py) take a group of one hour from
what the exporter's reader has just read (``known``), and read Redis only for the rest."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, cast

import numpy as np

from demandmon.baseline.expected import series_of
from demandmon.baseline.read import HourSums, current_groups
from demandmon.state.reader import StateReader
from demandmon.state.record import Counts, counter_field
from schemas.vocabulary import I_GRADE

END = 1_701_165_600.0 + 20 * 60


class NoRedis(StateReader):
    """A reader whose every Redis read fails the test."""

    def __init__(self) -> None:
        client = cast(Any, type("NoRedis", (), {"register_script": lambda self, _: None})())
        super().__init__(client, "t")

    def partitions_of(self, sources: Sequence[str]) -> dict[str, list[int]]:
        raise AssertionError(f"Redis read for {sources}")


def test_the_current_hours_known_need_no_redis() -> None:
    this, before = current_groups(END)
    counts = {
        this[0]: Counter({counter_field("graded", "SE", I_GRADE): 3}),
        before[0]: Counter({counter_field("s136_detentions", "NW"): 1}),
    }
    sums = HourSums(NoRedis(), known=lambda source: counts if source == "live" else {})
    got = sums.read({"live": [this, before]})["live"]
    assert [list(v) for v in got] == [list(series_of(Counts(counts[h[0]]))) for h in (this, before)]
    assert np.sum(got[0]) == 3 and np.sum(got[1]) == 1
