"""The series log as OpenMetrics text with timestamps, what `promtool tsdb
create-blocks-from openmetrics` reads: each family once with its HELP and TYPE lines (from
the exporter's own table), each series' samples together and in time order, timestamps in
seconds, ``# EOF`` at the end. Sample lines are written as the exporter writes them
(names, label order and escaping, values), plus the timestamp."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import groupby
from operator import itemgetter
from typing import TextIO

from prometheus_client.utils import floatToGoString

from demandmon.backfill.series import SeriesKey, SeriesLog
from demandmon.exporter.exposition import exposed_name
from demandmon.exporter.families import HELP


def _escape_label(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _escape_help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def timestamp(ms: int) -> str:
    """Milliseconds as OpenMetrics' seconds: whole, or with the milliseconds."""
    seconds, rest = divmod(ms, 1000)
    return str(seconds) if not rest else f"{seconds}.{rest:03d}"


_RANK = {name: i for i, name in enumerate(HELP)}


def _order(key: SeriesKey) -> tuple[int, tuple[tuple[str, str], ...]]:
    return _RANK[key[0]], key[1]


def lines(log: SeriesLog) -> Iterator[str]:
    """Every line of the file, each ending in a newline."""
    keys = sorted(log.series(), key=_order)
    for name, family in groupby(keys, key=itemgetter(0)):
        help_text, kind = HELP[name]
        yield f"# HELP {name} {_escape_help(help_text)}\n"
        yield f"# TYPE {name} {kind}\n"
        sample_name = exposed_name(name)
        for key in family:
            labels = ",".join(f'{k}="{_escape_label(v)}"' for k, v in sorted(key[1]))
            head = f"{sample_name}{{{labels}}} "
            for at, value in log.points(key):
                yield f"{head}{floatToGoString(value)} {timestamp(at)}\n"  # type: ignore[no-untyped-call]
    yield "# EOF\n"


def write(log: SeriesLog, out: TextIO) -> int:
    """Write the file; returns the number of sample lines."""
    samples = 0
    for line in lines(log):
        out.write(line)
        samples += not line.startswith("#")
    return samples
