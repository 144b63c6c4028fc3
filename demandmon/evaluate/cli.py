"""`demandmon evaluate --source NAME [--against NAME]`: a source's whole-stream figures
from Redis, as the force's RCRP briefing tables, optionally year on year."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import redis

from demandmon.arguments import CommandParser
from demandmon.clients import SyncRedis, redis_client, redis_failure
from demandmon.evaluate.compare import comparison
from demandmon.evaluate.render import RENDERERS
from demandmon.evaluate.report import build_report
from demandmon.settings import settings_or_exit
from demandmon.state import keys
from demandmon.state.reader import SourceFigures, StateReader
from demandmon.state.registry import registered

EXIT_UNKNOWN, EXIT_PROCESSING = 1, 3


def _parser() -> CommandParser:
    p = CommandParser(prog="demandmon evaluate", description=__doc__)
    p.add_argument("--source", required=True, help="the source to evaluate")
    p.add_argument("--against", default=None, help="a baseline source, e.g. last year")
    p.add_argument("--format", choices=sorted(RENDERERS), default="table")
    p.add_argument("--plot", type=Path, default=None, help="also draw the comparison to a PNG")
    p.add_argument("--wait", type=float, default=0, help="wait up to N s for replays to finish")
    return p


def progress(client: SyncRedis, prefix: str, fig: SourceFigures) -> tuple[int, int] | None:
    """(processed, sent) for a replayed source, None when nothing recorded a replay."""
    sent = client.hget(keys.replay(prefix, fig.source), "sent")
    if sent is None:
        return None
    processed = int(fig.meta.get("applied", 0)) + int(fig.meta.get("duplicate", 0))
    processed += sum(int(v) for k, v in fig.meta.items() if k.startswith("rej:"))
    return processed, int(sent)


def _read(
    reader: StateReader, client: SyncRedis, prefix: str, source: str, wait_s: float
) -> tuple[SourceFigures, str | None]:
    deadline = time.monotonic() + wait_s
    while True:
        fig = reader.read(source, time.time(), windows={}, totals=True)
        done = progress(client, prefix, fig)
        if done is None or done[0] >= done[1]:
            return fig, None
        if time.monotonic() >= deadline:
            return (
                fig,
                f"source '{source}' is still being processed: {done[0]:,} of {done[1]:,} events",
            )
        time.sleep(0.5)


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    settings = settings_or_exit("demandmon evaluate", "reader")
    try:
        client = redis_client(settings, timeout_s=30)
        reader = StateReader(client, settings.key_prefix)
        # A registered replay whose first events are not applied yet is known too: --wait
        # waits for it (its replay record says how many events were sent).
        known = sorted(set(reader.sources()) | registered(client, settings.key_prefix))
    except redis.RedisError as exc:
        print(f"demandmon evaluate: {redis_failure(settings, exc).line}", file=sys.stderr)
        return 1
    for name in filter(None, (args.source, args.against)):
        if name not in known:
            listed = ", ".join(known) or "none yet"
            print(f"demandmon evaluate: unknown source '{name}' (known: {listed})", file=sys.stderr)
            return EXIT_UNKNOWN
    reports: list[dict[str, Any]] = []
    busy: list[str] = []
    for name in filter(None, (args.source, args.against)):
        try:
            fig, note = _read(reader, client, settings.key_prefix, name, args.wait)
        except redis.RedisError as exc:
            print(f"demandmon evaluate: {redis_failure(settings, exc).line}", file=sys.stderr)
            return 1
        reports.append(build_report(fig))
        if note:
            busy.append(note)
    subject = reports[0]
    baseline = reports[1] if len(reports) > 1 else None
    change = comparison(subject, baseline) if baseline is not None else None
    sys.stdout.write(RENDERERS[args.format](subject, baseline, change))
    if args.plot is not None:
        # matplotlib takes about a second to import: only when a plot is asked for.
        from demandmon.evaluate.plot import plot_comparison

        plot_comparison(subject, baseline, args.plot)
        print(f"plot written to {args.plot}", file=sys.stderr)
    for note in busy:
        print(f"demandmon evaluate: {note}; figures are not final", file=sys.stderr)
    return EXIT_PROCESSING if busy else 0
