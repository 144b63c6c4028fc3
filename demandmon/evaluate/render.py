"""Render evaluation reports as a terminal table, JSON, CSV or Markdown. Pure.

Every format leads with the headline (CSV: carries its figures) and carries the same
figures: the RCRP categories of each source and, from ``compare.figure_rows``, officer
hours, I-grade, open incidents, attendance within target (I and S), s136 detentions,
detention hours and officer hours. Table and Markdown show them to people (thousands
separators, hours to 0.1 h, rates as percentages, changes of rates in points); JSON and
CSV hold the same values as numbers (rates as fractions of 1)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from demandmon.evaluate.compare import Report, Row, figure_rows, headline, saved
from schemas.vocabulary import TOO_LATE

Change = dict[str, Any] | None
LABEL_W, FIGURE_W = 38, 44
SOURCE_COLUMNS = (("incidents", 11), ("deployed", 10), ("% deployed", 12))
CHANGE_COLUMNS = (("incidents", 11), ("% deployed", 12))


def show(value: float | None, unit: str) -> str:
    """A figure as people read it."""
    if value is None:
        return "n/a"
    if unit == "rate":
        return f"{value * 100:.1f}%"
    if unit == "hours":
        return f"{value:,.1f}"
    return f"{int(value):,}"


def show_change(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "rate":
        return f"{value * 100:+.1f} pts"
    if unit == "hours":
        return f"{value:+,.1f}"
    return f"{int(value):+,}"


def show_percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:+.1f}%"


def category_rows(report: Report) -> list[tuple[str, str, int, int, float]]:
    """(category id, label, incidents, deployed, rate) per category, then the total."""
    rows = [
        (c["category"], c["label"], c["incidents"], c["deployed"], c["deployment_rate"])
        for c in report["categories"]
    ]
    t = report["total"]
    rows.append(("total", "Total", t["incidents"], t["deployed"], t["deployment_rate"]))
    return rows


def title(report: Report) -> str:
    p = report["period"]
    span = f"{p['from'][:10]} to {p['to'][:10]}" if p["from"] else "no incidents yet"
    return f"{report['source']} ({span})"


def periods(subject: Report, baseline: Report | None) -> str:
    if baseline is None:
        return title(subject)
    return f"{title(subject)} against {title(baseline)}"


def _reports(subject: Report, baseline: Report | None) -> list[Report]:
    return [r for r in (baseline, subject) if r is not None]


def _change_cells(old: tuple[Any, ...], new: tuple[Any, ...]) -> tuple[str, str]:
    incidents = show_percent(round((new[2] - old[2]) / old[2], 3) if old[2] else None)
    return incidents, show_change(round(new[4] - old[4], 3), "rate")


def as_json(subject: Report, baseline: Report | None, change: Change) -> str:
    doc = {"headline": headline(subject, baseline), **subject}
    if baseline is not None:
        doc["against"] = baseline
        doc["comparison"] = change
    return json.dumps(doc, indent=2)


def _group(name: str, columns: tuple[tuple[str, int], ...]) -> str:
    width = sum(w for _, w in columns)
    return "  " + f" {name} ".center(width - 2, "-")


def _cells(values: list[str], columns: tuple[tuple[str, int], ...]) -> str:
    return "".join(f"{v:>{w}}" for v, (_, w) in zip(values, columns, strict=True))


def as_table(subject: Report, baseline: Report | None, change: Change) -> str:
    reports = _reports(subject, baseline)
    out = io.StringIO()
    out.write(f"{headline(subject, baseline)}\n{periods(subject, baseline)}\n\n")
    groups = "".join(_group(r["source"], SOURCE_COLUMNS) for r in reports)
    names = [n for _ in reports for n, _ in SOURCE_COLUMNS]
    columns = SOURCE_COLUMNS * len(reports)
    if baseline is not None:
        groups += _group("change", CHANGE_COLUMNS)
        names += [n for n, _ in CHANGE_COLUMNS]
        columns += CHANGE_COLUMNS
    out.write(f"{'RCRP incidents by category':<{LABEL_W}}{groups}\n")
    out.write(f"{'category':<{LABEL_W}}{_cells(names, columns)}\n")
    for rows in zip(*map(category_rows, reports), strict=True):
        cells = [c for _, _, inc, dep, r in rows for c in (f"{inc:,}", f"{dep:,}", show(r, "rate"))]
        if baseline is not None:
            cells += _change_cells(rows[0], rows[1])
        out.write(f"{rows[0][1]:<{LABEL_W}}{_cells(cells, columns)}\n")

    out.write(f"\n{'figure':<{FIGURE_W}}")
    out.write("".join(f"{r['source']:>12}" for r in reports))
    out.write(f"{'change':>12}{'% change':>10}\n" if baseline is not None else "\n")
    for row in figure_rows(subject, baseline):
        out.write(f"{row['label']:<{FIGURE_W}}")
        out.write("".join(f"{show(row[k], row['unit']):>12}" for k in _value_keys(baseline)))
        if baseline is not None:
            out.write(f"{show_change(row['change'], row['unit']):>12}")
            out.write(f"{show_percent(row['percent_change']):>10}")
        out.write("\n")
    if baseline is not None:
        assert change is not None
        against = f"{subject['source']} against {baseline['source']}"
        out.write(f"\n{'saved':<{FIGURE_W}}{against:>24}\n")
        for _, label, unit, value in saved(change):
            out.write(f"{label:<{FIGURE_W}}{show(value, unit):>24}\n")
    out.write("\n")
    for report in reports:
        ev = report["events"]
        out.write(
            f"{report['source']}: events applied {ev['applied']:,}, "
            f"duplicates {ev['duplicates']:,}, rejected invalid {ev['rejected']['invalid']:,}, "
            f"too late {ev['rejected'][TOO_LATE]:,}\n"
        )
    return out.getvalue()


def _value_keys(baseline: Report | None) -> tuple[str, ...]:
    return ("baseline", "subject") if baseline is not None else ("subject",)


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def as_markdown(subject: Report, baseline: Report | None, change: Change) -> str:
    reports = _reports(subject, baseline)
    lines = [f"**{headline(subject, baseline)}**", "", periods(subject, baseline), ""]
    header = ["category"] + [f"{r['source']} {n}" for r in reports for n, _ in SOURCE_COLUMNS]
    if baseline is not None:
        header += [f"change in {n}" for n, _ in CHANGE_COLUMNS]
    body = []
    for rows in zip(*map(category_rows, reports), strict=True):
        cells = [c for _, _, inc, dep, r in rows for c in (f"{inc:,}", f"{dep:,}", show(r, "rate"))]
        if baseline is not None:
            cells += _change_cells(rows[0], rows[1])
        body.append([rows[0][1], *cells])
    lines += _md_table(header, body)
    header = ["figure"] + [r["source"] for r in reports]
    if baseline is not None:
        header += ["change", "% change"]
    body = []
    for row in figure_rows(subject, baseline):
        cells = [show(row[k], row["unit"]) for k in _value_keys(baseline)]
        if baseline is not None:
            cells += [show_change(row["change"], row["unit"]), show_percent(row["percent_change"])]
        body.append([row["label"], *cells])
    lines += ["", *_md_table(header, body)]
    if baseline is not None:
        assert change is not None
        header = ["saved", f"{subject['source']} against {baseline['source']}"]
        body = [[label, show(value, unit)] for _, label, unit, value in saved(change)]
        lines += ["", *_md_table(header, body)]
    return "\n".join(lines) + "\n"


def csv_rows(subject: Report, baseline: Report | None) -> list[Row]:
    """Every figure as one CSV row: the categories' incidents, deployed and rate, then
    ``compare.figure_rows``."""
    reports = _reports(subject, baseline)
    out: list[Row] = []
    for rows in zip(*map(category_rows, reports), strict=True):
        for i, (figure, unit) in enumerate(
            (("incidents", "count"), ("deployed", "count"), ("deployment_rate", "rate"))
        ):
            values = [r[2 + i] for r in rows]
            row: Row = {"figure": figure, "category": rows[0][0], "label": rows[0][1]}
            row |= {"unit": unit, "subject": values[-1], "baseline": None}
            row |= {"change": None, "percent_change": None}
            if baseline is not None:
                old, new = values
                row["baseline"] = old
                row["change"] = round(new - old, 3 if unit == "rate" else 0)
                if unit != "rate" and old:
                    row["percent_change"] = round((new - old) / old, 3)
            out.append(row)
    for row in figure_rows(subject, baseline):
        out.append({**row, "category": ""})
    return out


def as_csv(subject: Report, baseline: Report | None, change: Change) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    sources = [r["source"] for r in _reports(subject, baseline)]
    extra = ["change", "percent_change"] if baseline is not None else []
    writer.writerow(["figure", "category", "label", "unit", *sources, *extra])
    for row in csv_rows(subject, baseline):
        values = [row[k] for k in _value_keys(baseline)]
        if baseline is not None:
            values += [row["change"], row["percent_change"]]
        cells = ["" if v is None else v for v in values]
        writer.writerow([row["figure"], row["category"], row["label"], row["unit"], *cells])
    return out.getvalue()


RENDERERS = {"table": as_table, "json": as_json, "csv": as_csv, "markdown": as_markdown}
