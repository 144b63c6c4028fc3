"""The backfill loop: the file's events, step by step of event time, through the worker's
planning (agents/batch.py) and apply script into scratch state, read back at each step
and kept as the exporter's samples (demandmon/exporter/families.py)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from agents.batch import Consumed, plan_batch
from agents.classify import RcrpMapping
from demandmon.backfill.render import Renderer
from demandmon.backfill.scratch import PARTITION, ScratchState
from demandmon.backfill.series import SeriesLog
from demandmon.backfill.steps import by_step
from demandmon.state.reader import SourceFigures
from schemas.vocabulary import SOURCE_HEADER
from streams.replay.reader import Record, Skipped, encode, read_records

# What is written by default: the windowed families (what `evaluate` totals and the
# wall's last-year row read) for these windows, and the open list.
DEFAULT_WINDOWS: Final = {"24h": 24}  # and the whole-stream totals, window="all"


class RenderingDrift(RuntimeError):
    """The samples kept step by step differ from the final figures rendered whole."""


@dataclass(frozen=True)
class Plan:
    source: str
    shift_ms: int
    step_ms: int
    every_family: bool  # every family the exporter writes, every window
    max_message_bytes: int
    max_future_ms: int


@dataclass
class Progress:
    events: int = 0
    steps: int = 0
    snapshots: int = 0
    reached_ms: int | None = None
    first_step_ms: int | None = None
    skipped: Counter[str] = field(default_factory=Counter)
    applied: int = 0
    duplicate: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0


def _records(path: Path, shift_ms: int, progress: Progress) -> Iterator[tuple[int, Record]]:
    """The file's events in file order with their (shifted) event times; unreadable
    lines are counted by reason, as replay counts them."""
    for item in read_records(path):
        if isinstance(item, Skipped):
            progress.skipped[item.reason] += 1
        elif isinstance(item, Record):
            yield item.occurred_ms + shift_ms, item


def run(
    path: Path,
    plan: Plan,
    state: ScratchState,
    mapping: RcrpMapping,
    log: SeriesLog,
    report: Callable[[Progress], None] | None = None,
) -> Progress:
    """Apply and read the whole file into ``log``; returns what happened."""
    progress = Progress()
    started = time.monotonic()
    header = [(SOURCE_HEADER, plan.source.encode())]
    renderer = Renderer(plan.source, plan.every_family)
    fig: SourceFigures | None = None
    windows = None if plan.every_family else DEFAULT_WINDOWS
    offset = 0
    for at_ms, records in by_step(_records(path, plan.shift_ms, progress), plan.step_ms):
        messages = []
        for record in records:
            value = encode(record, plan.shift_ms)
            messages.append(Consumed("backfill", PARTITION, offset, record.key, value, header))
            offset += 1
        # The wall clock judges too_far_future, as the worker does: nothing is written
        # into the future.
        batch = plan_batch(
            messages,
            mapping,
            plan.max_message_bytes,
            int(time.time() * 1000),
            plan.max_future_ms,
            {plan.source},
        )
        for entries in batch.shards.values():
            result = state.apply(entries, at_ms)
            progress.applied += result.applied
            progress.duplicate += result.duplicate
            progress.rejected.update(result.rejected)
        progress.events += len(records)
        progress.steps += 1
        progress.reached_ms = at_ms
        if state.watermark_ms >= 0:  # something applied: the source has figures
            if progress.first_step_ms is None:
                progress.first_step_ms = at_ms
            fig = state.figures(windows)
            log.observe(at_ms, renderer.samples(fig))
            progress.snapshots += 1
        if report is not None:
            progress.elapsed_s = time.monotonic() - started
            report(progress)
    if fig is not None:  # the series kept step by step end where the figures are
        drift = [s for s in renderer.full(fig) if log.value((s.name, s.labels)) != s.value]
        if drift:
            raise RenderingDrift(f"{len(drift)} series differ from the final figures")
    progress.elapsed_s = time.monotonic() - started
    return progress
