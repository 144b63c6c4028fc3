"""The four output formats and the plot: the headline first, every column labelled, and
the same comparison figures in the table, Markdown, CSV and JSON."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from demandmon.evaluate.compare import comparison
from demandmon.evaluate.plot import bar_labels, plot_comparison, plot_title
from demandmon.evaluate.render import RENDERERS
from demandmon.evaluate.report import build_report
from tests.unit.evaluate_figures import EXTRA_2022, EXTRA_2023, ROWS_2022, ROWS_2023, figures

HEADLINE = "RCRP deployment rate 39.9% \u2192 26.2% (\u221213.7 points)"
PERIODS = "nov-2023 (2023-11-01 to 2023-11-29) against nov-2022 (2023-11-01 to 2023-11-29)"
# What people read for each comparison figure: (label, 2022, 2023, change, % change).
SHOWN = [
    ("officer hours, RCRP incidents", "77,000.0", "42,000.0", "-35,000.0", "-45.5%"),
    ("officer hours per RCRP deployment", "5.8", "5.7", "-0.1", "-1.7%"),
    ("I-grade incidents", "50,000", "40,700", "-9,300", "-18.6%"),
    ("open incidents at the end", "400", "320", "-80", "-20.0%"),
    ("I-grade attended within 15 min", "90.0%", "92.0%", "+2.0 pts", "n/a"),
    ("S-grade attended within 60 min", "75.0%", "80.0%", "+5.0 pts", "n/a"),
    ("s136 detentions", "800", "600", "-200", "-25.0%"),
    ("s136 detention hours (detained to handover)", "6,400.0", "3,900.0", "-2,500.0", "-39.1%"),
    ("s136 officer hours (officers x time)", "17,600.0", "11,400.0", "-6,200.0", "-35.2%"),
    ("s136 officer hours per detention", "22.0", "19.0", "-3.0", "-13.6%"),
]
SAVED = [
    ("deployments avoided", "5,995"),
    ("officer hours saved", "35,000.0"),
    ("s136 detentions avoided", "200"),
    ("s136 detention hours saved", "2,500.0"),
    ("s136 officer hours saved", "6,200.0"),
]


def _reports() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    new = build_report(figures("nov-2023", ROWS_2023, EXTRA_2023))
    old = build_report(figures("nov-2022", ROWS_2022, EXTRA_2022))
    return new, old, comparison(new, old)


def _render(fmt: str) -> str:
    new, old, change = _reports()
    return RENDERERS[fmt](new, old, change)


def test_every_format_leads_with_the_headline() -> None:
    assert _render("table").splitlines()[:2] == [HEADLINE, PERIODS]
    assert _render("markdown").splitlines()[:3] == [f"**{HEADLINE}**", "", PERIODS]
    doc = json.loads(_render("json"))
    assert doc["headline"] == HEADLINE and doc["comparison"]["headline"] == HEADLINE
    rows = list(csv.DictReader(io.StringIO(_render("csv"))))
    (rate,) = [r for r in rows if (r["figure"], r["category"]) == ("deployment_rate", "total")]
    assert (rate["nov-2022"], rate["nov-2023"], rate["change"]) == ("0.399", "0.262", "-0.137")


def test_table_labels_every_column_with_the_sources_above_them() -> None:
    lines = _render("table").splitlines()
    groups, header, first = lines[3], lines[4], lines[5]
    assert groups.startswith("RCRP incidents by category")
    assert groups.index("nov-2022") < groups.index("nov-2023") < groups.index("change")
    per_source = ["incidents", "deployed", "%", "deployed"]
    assert header.split() == ["category", *per_source, *per_source, "incidents", "%", "deployed"]
    assert first.split()[:4] == ["Concern", "for", "Safety", "15,968"]
    # Each column's header ends where its values end (right-aligned under it).
    total = next(line for line in lines if line.startswith("Total"))
    assert len(total) == len(header)
    assert total.split()[1:] == [
        "33,380",
        "13,305",
        "39.9%",
        "27,872",
        "7,310",
        "26.2%",
        "-16.5%",
        "-13.7",
        "pts",
    ]
    figure_header = next(line for line in lines if line.startswith("figure"))
    assert figure_header.split() == ["figure", "nov-2022", "nov-2023", "change", "%", "change"]


def test_table_and_markdown_show_every_comparison_figure() -> None:
    table, markdown = _render("table"), _render("markdown")
    for label, *cells in SHOWN:
        (line,) = [x for x in table.splitlines() if x.startswith(label + "  ")]
        assert line[len(label) :].split() == " ".join(cells).split(), line
        assert f"| {label} | {' | '.join(cells)} |" in markdown
    for label, value in SAVED:
        (line,) = [x for x in table.splitlines() if x.startswith(label + "  ")]
        assert line.split()[-1] == value
        assert f"| {label} | {value} |" in markdown


def test_markdown_labels_every_column() -> None:
    tables = [
        [line for line in block.splitlines() if line.startswith("|")]
        for block in _render("markdown").split("\n\n")
    ]
    tables = [t for t in tables if t]
    assert len(tables) == 3
    for rows in tables:
        header = [c.strip() for c in rows[0].strip("|").split("|")]
        assert all(header), header
        assert all(len(r.strip("|").split("|")) == len(header) for r in rows), rows
    assert tables[0][0] == (
        "| category | nov-2022 incidents | nov-2022 deployed | nov-2022 % deployed"
        " | nov-2023 incidents | nov-2023 deployed | nov-2023 % deployed"
        " | change in incidents | change in % deployed |"
    )
    assert (
        "| Total | 33,380 | 13,305 | 39.9% | 27,872 | 7,310 | 26.2% | -16.5% | -13.7 pts |"
        in (tables[0])
    )


def test_csv_and_json_carry_the_same_figures() -> None:
    doc = json.loads(_render("json"))
    rows = list(csv.DictReader(io.StringIO(_render("csv"))))
    assert list(rows[0]) == [
        "figure",
        "category",
        "label",
        "unit",
        "nov-2022",
        "nov-2023",
        "change",
        "percent_change",
    ]
    by_figure = {r["figure"]: r for r in rows if not r["category"]}
    assert list(by_figure) == [f["figure"] for f in doc["comparison"]["figures"]]
    for want in doc["comparison"]["figures"]:
        got = by_figure[want["figure"]]
        assert (got["label"], got["unit"]) == (want["label"], want["unit"])
        for column, key in (
            ("nov-2022", "baseline"),
            ("nov-2023", "subject"),
            ("change", "change"),
            ("percent_change", "percent_change"),
        ):
            value = want[key]
            assert got[column] == ("" if value is None else str(value)), (got, want)
    # ... and the category table, for both sources.
    mh = {r["figure"]: r for r in rows if r["category"] == "mental_health"}
    assert (mh["incidents"]["nov-2022"], mh["incidents"]["nov-2023"]) == ("9610", "9262")
    assert (mh["deployed"]["change"], mh["deployed"]["percent_change"]) == ("-727", "-0.384")
    assert doc["against"]["categories"][1]["incidents"] == 9610


def test_json_values_match_what_people_are_shown() -> None:
    doc = json.loads(_render("json"))
    for want, row in zip(SHOWN, doc["comparison"]["figures"], strict=True):
        assert row["label"] == want[0]
    assert doc["s136"]["officer_hours"] == 11_400.0
    assert doc["against"]["s136"]["detention_hours"] == 6_400.0


def test_one_source_has_its_headline_and_figures_without_change() -> None:
    new, _, _ = _reports()
    table = RENDERERS["table"](new, None, None)
    assert table.startswith("RCRP deployment rate 26.2% (7,310 of 27,872")
    assert "change" not in table and "saved" not in table
    total = next(line for line in table.splitlines() if line.startswith("Total"))
    assert total.split() == ["Total", "27,872", "7,310", "26.2%"]
    rows = list(csv.DictReader(io.StringIO(RENDERERS["csv"](new, None, None))))
    assert list(rows[0]) == ["figure", "category", "label", "unit", "nov-2023"]
    assert {"figure": "open_incidents", "nov-2023": "320"}.items() <= rows[-7].items()
    markdown = RENDERERS["markdown"](new, None, None)
    assert "| Total | 27,872 | 7,310 | 26.2% |" in markdown
    assert "headline" in json.loads(RENDERERS["json"](new, None, None))


def test_plot_names_both_periods_and_labels_counts(tmp_path: Path) -> None:
    new, old, _ = _reports()
    assert plot_title(new, old) == f"RCRP deployment rate by category\n{PERIODS}"
    labels = bar_labels(old)
    assert labels[1] == "19.7%\n1,895 of 9,610"
    assert labels[-1] == "39.9%\n13,305 of 33,380"
    path = tmp_path / "cmp.png"
    plot_comparison(new, old, path)
    assert path.stat().st_size > 10_000
