"""Render evaluation reports as a terminal table, JSON, CSV or Markdown. Pure."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from schemas.vocabulary import TOO_LATE

Report = dict[str, Any]


def _pct(rate: float) -> str:
    return f"{rate * 100:.1f}%"


def _rows(report: Report) -> list[tuple[str, int, int, float]]:
    rows = [
        (c["label"], c["incidents"], c["deployed"], c["deployment_rate"])
        for c in report["categories"]
    ]
    t = report["total"]
    rows.append(("Total", t["incidents"], t["deployed"], t["deployment_rate"]))
    return rows


def _title(report: Report) -> str:
    p = report["period"]
    span = f"{p['from'][:10]} to {p['to'][:10]}" if p["from"] else "no incidents yet"
    return f"{report['source']} ({span})"


def as_json(subject: Report, baseline: Report | None, change: dict[str, Any] | None) -> str:
    doc = dict(subject)
    if baseline is not None:
        doc["against"] = baseline
        doc["comparison"] = change
    return json.dumps(doc, indent=2)


def as_table(subject: Report, baseline: Report | None, change: dict[str, Any] | None) -> str:
    out = io.StringIO()
    if baseline is None:
        out.write(f"RCRP categories, {_title(subject)}\n")
        out.write(f"{'category':<40}{'incidents':>10}{'deployed':>10}{'% deployed':>12}\n")
        for label, inc, dep, r in _rows(subject):
            out.write(f"{label:<40}{inc:>10,}{dep:>10,}{_pct(r):>12}\n")
    else:
        out.write(f"RCRP categories, {_title(subject)} against {_title(baseline)}\n")
        out.write(
            f"{'category':<40}{'incidents':>10}{'deployed':>10}{'%':>8}"
            f"{'incidents':>11}{'deployed':>10}{'%':>8}{'change':>9}\n"
        )
        out.write(f"{'':<40}{baseline['source']:>28}{subject['source']:>29}\n")
        for (label, b_inc, b_dep, b_r), (_, inc, dep, r) in zip(
            _rows(baseline), _rows(subject), strict=True
        ):
            delta = f"{(inc - b_inc) / b_inc * 100:+.1f}%" if b_inc else "n/a"
            out.write(
                f"{label:<40}{b_inc:>10,}{b_dep:>10,}{_pct(b_r):>8}"
                f"{inc:>11,}{dep:>10,}{_pct(r):>8}{delta:>9}\n"
            )
        assert change is not None
        out.write("\n")
        out.write(f"deployments avoided          {change['deployments_avoided']:>12,}\n")
        out.write(f"officer hours saved          {change['officer_hours_saved']:>12,.1f}\n")
        per = change["officer_hours_per_deployment"]
        out.write(f"officer hours per deployment {per if per is not None else 'n/a':>12}\n")
        ig = change["igrade_change"]
        shown = f"{ig * 100:+.1f}%" if ig is not None else "n/a"
        out.write(f"I-grade incidents change     {shown:>12}\n")
        out.write(f"s136 detentions change       {change['s136_detentions_change']:>+12,}\n")
        out.write(f"s136 officer hours saved     {change['s136_officer_hours_saved']:>12,.1f}\n")
    ev = subject["events"]
    out.write(
        f"\nevents applied {ev['applied']:,}, duplicates {ev['duplicates']:,}, "
        f"rejected invalid {ev['rejected']['invalid']:,}, too late {ev['rejected'][TOO_LATE]:,}\n"
    )
    return out.getvalue()


def as_markdown(subject: Report, baseline: Report | None, change: dict[str, Any] | None) -> str:
    lines = []
    reports = [r for r in (baseline, subject) if r is not None]
    header = "| category |" + "".join(
        f" {r['source']} incidents | {r['source']} deployed | {r['source']} % |" for r in reports
    )
    lines.append(header)
    lines.append("|---|" + "---:|---:|---:|" * len(reports))
    for i, row in enumerate(_rows(subject)):
        cells = "".join(
            f" {rr[i][1]:,} | {rr[i][2]:,} | {_pct(rr[i][3])} |" for rr in map(_rows, reports)
        )
        lines.append(f"| {row[0]} |{cells}")
    if change is not None:
        lines.append("")
        lines.append(f"- deployments avoided: {change['deployments_avoided']:,}")
        lines.append(f"- officer hours saved: {change['officer_hours_saved']:,.1f}")
    return "\n".join(lines) + "\n"


def as_csv(subject: Report, baseline: Report | None, change: dict[str, Any] | None) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["source", "category", "incidents", "deployed", "deployment_rate"])
    for report in (r for r in (baseline, subject) if r is not None):
        for c in report["categories"]:
            writer.writerow(
                [
                    report["source"],
                    c["category"],
                    c["incidents"],
                    c["deployed"],
                    c["deployment_rate"],
                ]
            )
        t = report["total"]
        writer.writerow(
            [report["source"], "total", t["incidents"], t["deployed"], t["deployment_rate"]]
        )
    return out.getvalue()


RENDERERS = {"table": as_table, "json": as_json, "csv": as_csv, "markdown": as_markdown}
