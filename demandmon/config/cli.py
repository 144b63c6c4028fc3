"""`demandmon config generate [--check]`: thresholds.yaml -> rules, Alertmanager, dashboards;
`demandmon config alertmanager --webhook-url URL`: the deployable Alertmanager config.

Without --check, rewrites the generated files that differ. With --check (CI), writes
nothing and exits 1 with one line per file that is stale, missing or unexpected, so a
change to thresholds.yaml or the generators cannot land without its outputs.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from demandmon.alerting.alertmanager import render_alertmanager
from demandmon.alerting.email import email_routing
from demandmon.alerting.thresholds import THRESHOLDS_FILE, ThresholdsError, load_thresholds
from demandmon.arguments import CommandParser
from demandmon.config.generate import generated_files
from demandmon.settings import settings_or_exit

# Directories whose every file of the kind is loaded as a whole (Prometheus reads
# rules/*.yml, Grafana every dashboard JSON): a stray file there is drift too.
OWNED_GLOBS = ("deploy/prometheus/rules/*.yml", "grafana/dashboards/*.json")


def _parser() -> CommandParser:
    parser = CommandParser(
        prog="demandmon config", description="Generated configuration from thresholds.yaml."
    )
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    gen = sub.add_parser(
        "generate", help="regenerate alert rules, Alertmanager template and dashboards"
    )
    gen.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if any generated file is out of date",
    )
    gen.add_argument(
        "--root",
        type=Path,
        default=Path("."),
        help="repository root (default: the current directory)",
    )
    am = sub.add_parser(
        "alertmanager",
        help="print the deployable Alertmanager config: webhook, and e-mail from the settings",
    )
    am.add_argument("--webhook-url", required=True, help="the exporter's /alerts URL")
    return parser


def alertmanager(webhook_url: str) -> int:
    """The deployable config with the e-mail receivers of DEMANDMON_SMTP_* and
    DEMANDMON_ALERT_EMAIL_* (docs/alerts.md) on stdout."""
    try:
        email = email_routing(settings_or_exit("demandmon config"))
        print(render_alertmanager(webhook_url, email=email), end="")
    except ValueError as exc:
        print(f"demandmon config: {exc}", file=sys.stderr)
        return 2
    return 0


def drift(root: Path, expected: dict[str, str]) -> list[str]:
    """One line per generated file that does not match what the generator produces."""
    lines = []
    for rel, content in expected.items():
        path = root / rel
        if not path.exists():
            lines.append(f"{rel}: missing; run `demandmon config generate`")
        elif path.read_text(encoding="utf-8") != content:
            lines.append(f"{rel}: differs from the generator; run `demandmon config generate`")
    for pattern in OWNED_GLOBS:
        for path in sorted(root.glob(pattern)):
            rel = path.relative_to(root).as_posix()
            if rel not in expected:
                lines.append(f"{rel}: not produced by the generator; remove it")
    return lines


def write(root: Path, expected: dict[str, str]) -> list[str]:
    """Write the files whose content changed; return their paths."""
    written = []
    for rel, content in expected.items():
        path = root / rel
        if path.exists() and path.read_text(encoding="utf-8") == content:
            continue  # leave mtimes alone so file-watching provisioners stay quiet
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        written.append(rel)
    return written


def main(argv: Sequence[str]) -> int:
    args = list(argv)
    if args[:1] == ["config"]:
        args = args[1:]  # accept the full `config generate` form too
    opts = _parser().parse_args(args)
    if opts.action == "alertmanager":
        return alertmanager(opts.webhook_url)
    root: Path = opts.root
    try:
        thresholds = load_thresholds(root / THRESHOLDS_FILE)
    except ThresholdsError as exc:
        for line in exc.lines:
            print(f"error: {line}", file=sys.stderr)
        return 1
    expected = generated_files(thresholds)
    if opts.check:
        problems = drift(root, expected)
        for line in problems:
            print(line, file=sys.stderr)
        if problems:
            return 1
        print(f"{len(expected)} generated files are up to date")
        return 0
    written = write(root, expected)
    for rel in written:
        print(f"wrote {rel}")
    for line in drift(root, expected):
        print(f"warning: {line}", file=sys.stderr)
    print(f"{len(written)} of {len(expected)} generated files changed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
