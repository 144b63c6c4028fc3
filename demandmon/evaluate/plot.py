"""Draw a source's deployment rate per RCRP category, side by side with a baseline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt


def plot_comparison(subject: dict[str, Any], baseline: dict[str, Any] | None, path: Path) -> None:
    reports = [r for r in (baseline, subject) if r is not None]
    labels = [
        c["label"].replace(" (partners only)", "\n(partners only)") for c in subject["categories"]
    ]
    labels.append("Total")
    width = 0.8 / len(reports)
    fig, ax = plt.subplots(figsize=(11, 5))
    for i, report in enumerate(reports):
        rates = [c["deployment_rate"] * 100 for c in report["categories"]]
        rates.append(report["total"]["deployment_rate"] * 100)
        xs = [x + i * width for x in range(len(labels))]
        bars = ax.bar(xs, rates, width, label=report["source"])
        ax.bar_label(bars, fmt="%.1f%%", fontsize=8)
    ax.set_xticks(
        [x + width * (len(reports) - 1) / 2 for x in range(len(labels))], labels, fontsize=8
    )
    ax.set_ylabel("% of incidents deployed to")
    ax.set_title("RCRP deployment rate by category")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
