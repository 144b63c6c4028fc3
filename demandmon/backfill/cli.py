"""`demandmon backfill FILE --source NAME`: turn a historical event stream into
Prometheus history, the series the exporter would have shown had the stream been
replayed live, at each step of event time.

The events go through the worker's own planning and apply script into scratch Redis keys
(deleted at the end), the state is read at each step as the exporter reads a replay
source (windows end at its watermark), and the exporter's families are written as
OpenMetrics with timestamps; promtool turns that into TSDB blocks, which --into-stack
moves into the local stack's Prometheus (it loads them within a minute)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import redis

from agents.classify import load_mapping
from demandmon.arguments import CommandParser
from demandmon.backfill.durations import format_duration, parse_duration_ms
from demandmon.backfill.promtool import PromtoolError, find_promtool
from demandmon.backfill.publish import publish
from demandmon.backfill.run import Plan, Progress, RenderingDrift, run
from demandmon.backfill.scratch import ScratchState, scratch_prefix
from demandmon.backfill.series import HEARTBEAT_MS, SeriesLog
from demandmon.backfill.target import prometheus_data
from demandmon.clients import redis_client, redis_failure
from demandmon.settings import settings_or_exit
from schemas.vocabulary import LIVE_SOURCE, UNKNOWN_SOURCE, valid_source
from streams.replay.reader import ReplayFileError, open_binary

PROG = "demandmon backfill"
MIN_STEP_MS, MAX_STEP_MS = 1000, HEARTBEAT_MS
SIZE = (
    "Size: the exporter writes about 2,400 series per source; a sample of each every "
    "step of a month would be about 100 million lines. By default only the windowed "
    "families (incidents, deployed, officer time, grades, attendance, s136) for the "
    "windows 24h and all, and demand_open_incidents, are written: what `evaluate` totals "
    "and the wall's last-year row read (--all-families writes every family and window). "
    "A series' sample is written when its value changed, and at least every 4 minutes "
    "while it stands (under Prometheus' 5-minute lookback, so any instant reads what a "
    "scrape at that step would have shown): about 8.5 million lines (0.9 GB) for 28 days."
)


def _parser() -> CommandParser:
    p = CommandParser(prog=PROG, description=__doc__, epilog=SIZE)
    p.add_argument("file", type=Path, help="JSON Lines event file (.jsonl or .jsonl.gz)")
    p.add_argument(
        "--source", required=True, metavar="NAME", help="the source label the series carry"
    )
    p.add_argument(
        "--shift",
        default="0",
        metavar="DURATION",
        help="move event times later, as Prometheus writes durations (52w, 104w, 3d, 1h30m); "
        "default none: the series sit at their true times, read back with offset 52w",
    )
    p.add_argument(
        "--step",
        default="60s",
        metavar="DURATION",
        help="the scrape interval to mimic (1s to 4m; 60s)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder for the file and blocks (./backfill-NAME)",
    )
    to = p.add_mutually_exclusive_group()
    to.add_argument(
        "--into-stack", action="store_true", help="move the blocks into the stack's Prometheus"
    )
    to.add_argument(
        "--prometheus-data", type=Path, default=None, metavar="DIR", help="... or into DIR"
    )
    p.add_argument("--all-families", action="store_true", help="every family and window")
    p.add_argument("--keep-openmetrics", action="store_true", help="keep the OpenMetrics file")
    p.add_argument(
        "--rcrp-mapping",
        type=Path,
        default=None,
        metavar="FILE",
        help="the worker's mapping, if not the default",
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


@dataclass(frozen=True)
class Checked:
    shift_ms: int
    step_ms: int
    out: Path


def _check(args: argparse.Namespace) -> Checked:
    """The arguments that need more than argparse; a ValueError is the line to print."""
    if args.source in (LIVE_SOURCE, UNKNOWN_SOURCE) or not valid_source(args.source):
        raise ValueError(
            "--source must be 1-40 characters of a-z 0-9 . _ - starting with a letter or "
            f"digit, and not '{LIVE_SOURCE}' or '{UNKNOWN_SOURCE}'"
        )
    shift = parse_duration_ms(args.shift)
    step = parse_duration_ms(args.step)
    if not MIN_STEP_MS <= step <= MAX_STEP_MS or step % 1000:
        raise ValueError("--step must be whole seconds from 1s to 4m")
    out = args.out if args.out is not None else Path(f"backfill-{args.source}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"--out {out}: exists and is not an empty folder")
    return Checked(shift, step, out)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _shown(quiet: bool) -> Callable[[Progress], None]:
    shown = [time.monotonic()]

    def show(p: Progress) -> None:
        if quiet or time.monotonic() - shown[0] < 5 or p.reached_ms is None:
            return
        shown[0] = time.monotonic()
        print(
            f"{PROG}: event time {_iso(p.reached_ms)}, {p.events:,} events, {p.elapsed_s:,.0f} s",
            file=sys.stderr,
            flush=True,
        )

    return show


def _fail(message: str, code: int) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return code


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        checked = _check(args)
        promtool = find_promtool()
        data = prometheus_data(args.into_stack, args.prometheus_data)
        open_binary(args.file).close()
        mapping = load_mapping(args.rcrp_mapping)
    # (DurationError, TargetError and MappingError are ValueErrors)
    except (ValueError, PromtoolError, ReplayFileError) as exc:
        return _fail(str(exc), 2)
    settings = settings_or_exit(PROG, "admin")
    plan = Plan(
        args.source,
        checked.shift_ms,
        checked.step_ms,
        args.all_families,
        settings.max_message_bytes,
        settings.max_future_s * 1000,
    )
    log = SeriesLog(checked.step_ms)
    try:
        client = redis_client(settings)
        client.ping()
        state = ScratchState(
            client, scratch_prefix(settings.key_prefix), args.source, settings.retention_s
        )
    except redis.RedisError as exc:
        return _fail(redis_failure(settings, exc).line, 1)
    try:
        progress = run(args.file, plan, state, mapping, log, _shown(args.quiet))
    except ReplayFileError as exc:
        return _fail(str(exc), 2)
    except redis.RedisError as exc:
        return _fail(redis_failure(settings, exc).line, 1)
    except RenderingDrift as exc:
        return _fail(f"internal error, nothing written: {exc}", 1)
    except KeyboardInterrupt:
        return _fail("interrupted: nothing written", 130)
    finally:
        try:
            state.delete()
        except redis.RedisError as exc:
            print(
                f"{PROG}: scratch keys {state.prefix}:* not deleted: "
                f"{redis_failure(settings, exc).line}",
                file=sys.stderr,
            )
    return _finish(args, checked, progress, log, promtool, data)


def _finish(
    args: argparse.Namespace,
    checked: Checked,
    progress: Progress,
    log: SeriesLog,
    promtool: Path,
    data: Path | None,
) -> int:
    rejected = sum(progress.rejected.values())
    skipped = sum(progress.skipped.values())
    print(
        f"backfill {args.source}: {progress.events:,} events read, {progress.applied:,} applied, "
        f"{progress.duplicate:,} duplicates, {rejected:,} rejected"
        + (f" ({_reasons(progress.rejected)})" if rejected else "")
        + f"; skipped {skipped} lines"
        + (f" ({_reasons(progress.skipped)})" if skipped else "")
    )
    if progress.first_step_ms is None or log.end_ms is None:
        return _fail(f"{args.file}: no event was applied, nothing to write", 1)
    shifted = f", shifted {format_duration(checked.shift_ms)}" if checked.shift_ms else ""
    print(
        f"  {_iso(progress.first_step_ms)} to {_iso(log.end_ms)} (event time{shifted}), "
        f"a step every {checked.step_ms // 1000} s: {progress.snapshots:,} steps read "
        f"in {progress.elapsed_s:,.1f} s"
    )
    try:
        done = publish(log, checked.out, args.source, promtool, data, args.keep_openmetrics)
    except (PromtoolError, OSError) as exc:
        return _fail(str(exc), 1)
    except KeyboardInterrupt:
        return _fail(f"interrupted: what was written is in {checked.out}", 130)
    where = f" -> {done.openmetrics}" if done.kept else ""
    print(
        f"  {done.samples:,} samples of {len(log.series()):,} series ({log.changes():,} "
        f"changes, the rest every {log.every_ms // 60_000} min while a value stands), "
        f"{done.bytes / 1e6:,.0f} MB of OpenMetrics{where} in {done.write_s:,.1f} s"
    )
    folder = data if data is not None else checked.out
    blocks = f"{len(done.blocks)} block" + ("" if len(done.blocks) == 1 else "s")
    print(f"  promtool: {blocks} in {done.promtool_s:,.1f} s, in {folder}")
    if data is not None:
        print("  Prometheus loads them at its next block reload, within about a minute")
    else:
        print("  move the block folders into Prometheus' data folder (docs/runbook.md)")
    return 0


def _reasons(counts: dict[str, int]) -> str:
    return ", ".join(f"{n:,} {reason}" for reason, n in sorted(counts.items()))
