"""Draw a source's deployment rate per RCRP category, side by side with a baseline: each
bar is labelled with its rate and its counts (deployed of incidents), and the title names
both periods."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt

from demandmon.evaluate.render import category_rows, periods


def bar_labels(report: dict[str, Any]) -> list[str]:
    """Each category's (and the total's) bar label: rate, then deployed of incidents."""
    return [f"{r * 100:.1f}%\n{dep:,} of {inc:,}" for _, _, inc, dep, r in category_rows(report)]


def plot_title(subject: dict[str, Any], baseline: dict[str, Any] | None) -> str:
    return f"RCRP deployment rate by category\n{periods(subject, baseline)}"


def plot_comparison(subject: dict[str, Any], baseline: dict[str, Any] | None, path: Path) -> None:
    reports = [r for r in (baseline, subject) if r is not None]
    labels = [
        label.replace(" (partners only)", "\n(partners only)")
        for _, label, *_ in category_rows(subject)
    ]
    width = 0.8 / len(reports)
    fig, ax = plt.subplots(figsize=(15, 6))
    top = 0.0
    for i, report in enumerate(reports):
        rates = [r * 100 for *_, r in category_rows(report)]
        top = max(top, *rates)
        xs = [x + i * width for x in range(len(labels))]
        bars = ax.bar(xs, rates, width, label=report["source"])
        ax.bar_label(bars, labels=bar_labels(report), fontsize=7, padding=2)
    ax.set_ylim(0, top * 1.2 + 1)  # room for the two-line labels above the bars
    ax.set_xticks(
        [x + width * (len(reports) - 1) / 2 for x in range(len(labels))], labels, fontsize=8
    )
    ax.set_ylabel("% of RCRP incidents deployed to")
    ax.set_title(plot_title(subject, baseline), fontsize=10)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
