"""The series log written out: the OpenMetrics file, promtool's blocks, and (when asked)
the blocks moved into a Prometheus data folder."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from demandmon.backfill import openmetrics
from demandmon.backfill.promtool import create_blocks, move_blocks
from demandmon.backfill.series import SeriesLog


@dataclass
class Published:
    openmetrics: Path
    samples: int = 0
    bytes: int = 0
    write_s: float = 0.0
    promtool_s: float = 0.0
    blocks: list[Path] = field(default_factory=list)
    kept: bool = False


def publish(
    log: SeriesLog, out: Path, name: str, promtool: Path, data: Path | None, keep: bool
) -> Published:
    """Write ``out/<name>.om``, make blocks of it in ``out``, move them into ``data`` when
    given; the OpenMetrics file is removed afterwards unless ``keep``."""
    out.mkdir(parents=True, exist_ok=True)
    done = Published(out / f"{name}.om", kept=keep)
    started = time.monotonic()
    with done.openmetrics.open("w", encoding="utf-8", newline="\n") as stream:
        done.samples = openmetrics.write(log, stream)
    done.bytes = done.openmetrics.stat().st_size
    done.write_s = time.monotonic() - started
    started = time.monotonic()
    try:
        blocks = create_blocks(promtool, done.openmetrics, out)
    finally:
        if not keep:
            done.openmetrics.unlink(missing_ok=True)
    done.promtool_s = time.monotonic() - started
    done.blocks = move_blocks(blocks, data) if data is not None else blocks
    if data is not None and not keep and not any(out.iterdir()):
        out.rmdir()  # nothing left in it
    return done
