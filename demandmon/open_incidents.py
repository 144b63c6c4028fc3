"""`demandmon open [--source S] [--bcu B] [--grade G] [--format table|json]`: the open
incidents of a source as of its window end (its watermark; now for `live`), oldest first:
id, BCU, category, grade, age, whether attended, and a mark on those past their
attendance target (I 15 min, S 60 min, not attended). Role reader; ids and allow-listed
values only, never free text. At most --limit rows (the oldest); a note says when more
are open."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime

import redis

from demandmon.arguments import CommandParser
from demandmon.clients import redis_client, redis_failure
from demandmon.settings import settings_or_exit
from demandmon.state.open_list import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    OpenList,
    as_json,
    check_filters,
    check_limit,
    rows,
)
from demandmon.state.open_read import known_sources, read_open, source_known
from schemas.vocabulary import BCU_CODES, GRADES_WITH_UNKNOWN, LIVE_SOURCE

PROG = "demandmon open"
EXIT_USAGE, EXIT_UNKNOWN = 2, 1
HEAD = ("incident", "bcu", "category", "grade", "age", "attended", "target")


def _parser() -> CommandParser:
    p = CommandParser(prog=PROG, description=__doc__)
    p.add_argument("--source", default=LIVE_SOURCE, help="the source (default live)")
    p.add_argument("--bcu", default=None, help=f"one BCU: {' '.join(BCU_CODES)}")
    p.add_argument("--grade", default=None, help=f"one grade: {' '.join(GRADES_WITH_UNKNOWN)}")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument(
        "--limit",
        default=str(DEFAULT_LIMIT),
        help=f"at most this many rows, the oldest (default {DEFAULT_LIMIT}, at most {MAX_LIMIT})",
    )
    return p


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms // 1000, UTC).isoformat().replace("+00:00", "Z")


def age_text(seconds: int) -> str:
    """An age as a person reads it: 45s, 14m 05s, 3h 07m, 2d 04h."""
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d {seconds % 86400 // 3600:02d}h"


def summary(listing: OpenList) -> str:
    end = "now" if listing.live_end else "the watermark"
    return f"{listing.total:,} open in {listing.source} as of {iso(listing.window_end_ms)} ({end})"


def truncation_note(listing: OpenList) -> str | None:
    if not listing.truncated:
        return None
    return (
        f"showing the oldest {len(listing.incidents):,} of {listing.total:,}; "
        f"narrow with --bcu/--grade or raise --limit (at most {MAX_LIMIT:,})"
    )


def as_table(listing: OpenList) -> str:
    """Aligned columns, oldest first; past-target rows marked PAST, then a summary."""
    body = [
        (
            r["incident_id"],
            r["bcu"],
            r["category"],
            r["grade"],
            age_text(r["age_seconds"]),
            "yes" if r["attended"] else "no",
            "PAST" if r["past_target"] else "",
        )
        for r in rows(listing)
    ]
    widths = [max(len(row[c]) for row in [HEAD, *body]) for c in range(len(HEAD))]
    lines = [
        "  ".join(
            cell.rjust(w) if c == 4 else cell.ljust(w)
            for c, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in [HEAD, *body]
    ]
    past = sum(1 for row in body if row[6])
    lines.append(f"{summary(listing)}; {past:,} shown past target (PAST)")
    note = truncation_note(listing)
    if note:
        lines.append(note)
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    limit = check_limit(args.limit, "--")
    problem = check_filters(args.source, args.bcu, args.grade, "--")
    if isinstance(limit, str) or problem:
        print(f"{PROG}: {problem or limit}", file=sys.stderr)
        return EXIT_USAGE
    settings = settings_or_exit(PROG, "reader")
    prefix = settings.key_prefix
    try:
        client = redis_client(settings, timeout_s=30)
        if not source_known(client, prefix, args.source):
            known = ", ".join(known_sources(client, prefix))
            print(f"{PROG}: unknown source '{args.source}' (known: {known})", file=sys.stderr)
            return EXIT_UNKNOWN
        listing = read_open(
            client, prefix, args.source, time.time(), bcu=args.bcu, grade=args.grade, limit=limit
        )
    except redis.RedisError as exc:
        print(f"{PROG}: {redis_failure(settings, exc).line}", file=sys.stderr)
        return 1
    if args.format == "json":
        sys.stdout.write(as_json(listing) + "\n")
        note = truncation_note(listing)
        if note:
            print(f"{PROG}: {note}", file=sys.stderr)
    else:
        sys.stdout.write(as_table(listing))
    return 0
