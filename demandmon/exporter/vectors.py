"""Counter fields as vectors: every field that can become a sample in a fixed order, and
read.lua's {field: n} replies as int64 vectors in that order, which the exporter's reader
(demandmon/exporter/cache.py) keeps per shard and adds up across a source's shards."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from itertools import repeat
from typing import Any

import numpy as np
from numpy.typing import NDArray

from demandmon.state.record import BUCKET_COUNTERS, Code, counter_field
from demandmon.state.record import GAUGES as GAUGE_CODES
from schemas.vocabulary import BCU_CODES, CATEGORIES, GRADES_WITH_UNKNOWN, TARGET_GRADES

_DOMAINS: dict[str, tuple[str, ...]] = {
    "bcu": BCU_CODES,
    "category": CATEGORIES,
    "grade": GRADES_WITH_UNKNOWN,
}
assert set(TARGET_GRADES) <= set(GRADES_WITH_UNKNOWN)


def _fields(codes: Iterable[Code]) -> tuple[str, ...]:
    return tuple(
        counter_field(code.name, *labels)
        for code in codes
        for labels in itertools.product(*(_DOMAINS[label] for label in code.labels))
    )


# Every counter field that can become a sample, in a fixed order: a shard's figures are
# kept as a vector of numbers in this order (a field outside the vocabulary is never
# exported, so not kept), and a source's are their column sums.
BUCKET_FIELDS = _fields(BUCKET_COUNTERS)
GAUGE_FIELDS = _fields(GAUGE_CODES)
Vector = NDArray[np.int64]


class Layout:
    """Fields in a fixed order: read.lua's {field: n} <-> a vector, and back."""

    def __init__(self, fields: Sequence[str]) -> None:
        self.fields = list(fields)
        # Fields outside the vocabulary land in one more slot, dropped after.
        self.index = {f: i for i, f in enumerate(self.fields)}
        self.spill = len(self.fields)

    def vector(self, raw: Mapping[str, Any]) -> Vector:
        """``raw`` (read.lua's numbers, or digit strings from 10^14 on: sums exact in Lua's
        doubles below 2^53, so int64 holds them and any sum of shards) as a vector."""
        out = np.zeros(self.spill + 1, dtype=np.int64)
        n = len(raw)
        at = np.fromiter(map(self.index.get, raw, repeat(self.spill)), np.intp, n)
        try:
            out[at] = np.fromiter(raw.values(), np.int64, n)
        except (TypeError, ValueError):
            out[at] = [int(v) for v in raw.values()]
        return out[: self.spill]

    def counter(self, vectors: Sequence[Vector]) -> Counter[str]:
        """The vectors' sum as a counter of the fields that are not zero."""
        if not vectors:
            return Counter()
        sums = np.sum(vectors, axis=0)
        nonzero = np.flatnonzero(sums).tolist()
        names = [self.fields[i] for i in nonzero]
        return Counter(dict(zip(names, sums[nonzero].tolist(), strict=True)))


BUCKETS = Layout(BUCKET_FIELDS)
GAUGES = Layout(GAUGE_FIELDS)
