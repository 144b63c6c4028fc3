"""The goals of issue 11 as the benchmark prints them: each one a measured figure, its target,
and the verdict, with the absolute figures behind it as a note (the box is shared and noisy,
so verdicts are ratios against bare limits measured in the same run wherever one exists)."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from types import FrameType


@dataclass(frozen=True)
class Goal:
    name: str  # what is measured, e.g. "worker end to end / min(raw consume, raw Lua)"
    measured: float  # the figure the verdict is on (a ratio, seconds or milliseconds)
    target: float
    unit: str = ""  # "x" for a ratio, "ms", "s", "min"; printed after the figures
    at_least: bool = True  # True: measured >= target meets it; False: measured <= target
    note: str = ""  # the absolute figures behind it, for the notes only

    @property
    def met(self) -> bool:
        return self.measured >= self.target if self.at_least else self.measured <= self.target

    def line(self) -> str:
        sign = ">=" if self.at_least else "<="
        verdict = "MET" if self.met else "NOT MET"
        unit = f" {self.unit}" if self.unit else ""
        figures = f"{self.measured:,.2f}{unit} (target {sign} {self.target:,.2f}{unit})"
        text = f"{verdict:7} {self.name}: {figures}"
        return f"{text}\n          {self.note}" if self.note else text


def not_measured(name: str, why: str) -> str:
    return f"SKIPPED {name}: {why}"


def goal_lines(goals: list[Goal], skipped: list[str]) -> str:
    met = sum(g.met for g in goals)
    head = f"== goals (issue 11): {met} of {len(goals)} met" + (
        f", {len(skipped)} not measured in this run" if skipped else ""
    )
    return "\n".join([head, *(g.line() for g in goals), *skipped])


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def interrupt_on_signals() -> None:
    """SIGTERM and SIGHUP take Ctrl-C's path, so every benchmark's finally blocks clean up."""
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)


def wall_time_line(started: float) -> str:
    return (
        f"benchmark wall time {time.monotonic() - started:,.0f} s (load avg now "
        f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs)"
    )
