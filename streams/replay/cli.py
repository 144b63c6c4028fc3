"""`demandmon replay FILE --source NAME`: send an event file through the pipeline with
event time preserved (optionally shifted), as fast as possible or at X times real time."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import redis

from demandmon.arguments import CommandParser
from demandmon.clients import KafkaUnavailable, kafka_where, redis_client, redis_failure
from demandmon.kafka_topics import topics_ready
from demandmon.settings import Settings, settings_or_exit
from demandmon.state import keys
from demandmon.state.registry import register
from schemas.vocabulary import LIVE_SOURCE, UNKNOWN_SOURCE, valid_source
from streams.replay.kafka_client import ReplayProducer, replay_producer
from streams.replay.producer import ReplayReport, send_all
from streams.replay.reader import FileScan, ReplayFileError, open_binary, read_records
from streams.replay.scan import scan
from streams.replay.timing import Pacer, parse_duration_ms, rebase_shift_ms


def _parser() -> CommandParser:
    p = CommandParser(prog="demandmon replay", description=__doc__)
    p.add_argument("file", type=Path, help="JSON Lines event file (.jsonl or .jsonl.gz)")
    p.add_argument("--source", required=True, help="source name the figures are kept under")
    p.add_argument("--speed", type=float, default=None, help="X times real time (default: max)")
    p.add_argument("--shift", default=None, help="move event times, e.g. 52w, -1d, 3h")
    p.add_argument("--rebase", choices=["now"], default=None, help="make the stream look live")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    return p


class _Connecting:
    """Kafka made ready in a thread while the file is read, since neither waits for the
    other: the topic checked (on the plain stack, created), then the producer."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.producer: ReplayProducer | None = None
        self.failure = ""
        self.thread = threading.Thread(target=self._connect, name="replay-connect", daemon=True)

    def _connect(self) -> None:
        settings = self.settings
        try:
            # Secured Kafka: the topic must exist (replay never creates it); plain: created.
            topics_ready(settings, [settings.events_topic], wait_s=10)
            self.producer = replay_producer(settings, settings.events_topic)
        except KafkaUnavailable as exc:
            self.failure = str(exc)
        except Exception as exc:  # anything else is one line too, and never a traceback
            self.failure = f"{kafka_where(settings)}: {type(exc).__name__}"

    def producer_or_failure(self) -> ReplayProducer | str:
        self.thread.join()
        return self.producer if self.producer is not None else self.failure

    def abandon(self) -> None:
        """Not needed after all (the file was unreadable): close what is ready; a thread
        still connecting ends with the process."""
        if not self.thread.is_alive() and self.producer is not None:
            self.producer.close()


def _prepare(
    args: argparse.Namespace, settings: Settings, shift: int
) -> tuple[FileScan, ReplayProducer, int] | int:
    """Read the file through once (connecting to Kafka meanwhile), then register the
    source: the scan, the producer and the shift (with --rebase) to send with, or the exit
    code once the reason is said."""
    connecting = _Connecting(settings)
    try:
        # Event times are worked out only when they are needed: to pace or to rebase.
        times = args.speed is not None or args.rebase == "now"
        connecting.thread.start()
        scanned = scan(args.file, times)
        if not scanned.count:
            raise ReplayFileError(f"{args.file}: holds no readable events")
        if args.rebase == "now":
            first, last = scanned.first_ms or 0, scanned.last_ms or 0
            now_ms = int(time.time() * 1000)
            shift += rebase_shift_ms(first, last, now_ms, args.speed is not None)
        ready = connecting.producer_or_failure()
        if isinstance(ready, str):
            print(f"demandmon replay: {ready}", file=sys.stderr)
            return 1
        refused = _register(settings, args.source)
        if refused is not None:
            ready.close()
            print(f"demandmon replay: {refused}", file=sys.stderr)
            return 1
        return scanned, ready, shift
    except ReplayFileError as exc:
        connecting.abandon()
        print(f"demandmon replay: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        connecting.abandon()
        print("replay interrupted before sending: nothing was sent", file=sys.stderr)
        return 130


def _progress(total: int) -> Callable[[ReplayReport], None]:
    """A redrawn bar on a terminal; on a pipe or log, a plain line every 5 s."""
    tty = sys.stderr.isatty()
    shown = [0.0]

    def show(report: ReplayReport) -> None:
        if not tty and report.elapsed_s - shown[0] < 5:
            return
        shown[0] = report.elapsed_s
        done, rate = report.sent, report.rate
        eta = (total - done) / rate if rate > 0 else 0
        bar = "#" * int(30 * done / total) if total else ""
        text = f"[{bar:<30}] {done:,}/{total:,} {rate:,.0f} events/s ETA {eta:,.0f}s"
        print(f"\r{text} " if tty else text, end="" if tty else "\n", file=sys.stderr, flush=True)

    return show


def _register(settings: Settings, source: str) -> str | None:
    """Register the source before anything is sent (the worker refuses messages of an
    unregistered one), atomically with the cap on sources; None when registered, else
    the one line to print. Touches ``<prefix>:registry`` only."""
    if source == LIVE_SOURCE:
        return None
    try:
        done = register(redis_client(settings), settings.key_prefix, source, settings.max_sources)
    except redis.RedisError as exc:
        return f"could not register the source: {redis_failure(settings, exc).line}"
    return done.refusal() if done.refused else None


def _record_sent(settings: Settings, source: str, sent: int) -> None:
    """Tell `evaluate` how many events to expect, so it can say when a replay is done."""
    try:
        client = redis_client(settings, timeout_s=5)
        client.hincrby(keys.replay(settings.key_prefix, source), "sent", sent)
    except redis.RedisError as exc:
        line = redis_failure(settings, exc).line
        print(f"demandmon replay: could not record the send: {line}", file=sys.stderr)


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if not valid_source(args.source) or args.source == UNKNOWN_SOURCE:
        print(
            "demandmon replay: --source must be 1-40 characters of a-z 0-9 . _ - "
            f"starting with a letter or digit (and not '{UNKNOWN_SOURCE}')",
            file=sys.stderr,
        )
        return 2
    if args.speed is not None and args.speed <= 0:
        print("demandmon replay: --speed must be greater than 0", file=sys.stderr)
        return 2
    try:
        shift = parse_duration_ms(args.shift) if args.shift else 0
        open_binary(args.file).close()  # a file that is not there is said before connecting
    except (ValueError, ReplayFileError) as exc:
        print(f"demandmon replay: {exc}", file=sys.stderr)
        return 2
    settings = settings_or_exit("demandmon replay", "replay")
    prepared = _prepare(args, settings, shift)
    if isinstance(prepared, int):
        return prepared
    scanned, producer, shift = prepared
    first = scanned.first_ms or 0
    pacer = Pacer(args.speed, first) if args.speed is not None else None
    show = None if args.quiet else _progress(scanned.count)
    # Unshifted and unpaced, the lines the scan marked are sent as they are.
    as_is = scanned if not shift and pacer is None else None
    try:
        report = send_all(
            producer,
            settings.events_topic,
            read_records(args.file, as_is),
            args.source,
            shift_ms=shift,
            pacer=pacer,
            progress=show,
        )
    except ReplayFileError as exc:
        print(f"\ndemandmon replay: {exc}", file=sys.stderr)
        return 2
    finally:
        producer.close()
    if show is not None and sys.stderr.isatty():
        print(file=sys.stderr)
    skipped = sum(report.skipped.values())
    why = ", ".join(f"{n} {reason}" for reason, n in sorted(report.skipped.items()))
    print(
        f"replay {args.source}: sent {report.sent:,} events in {report.elapsed_s:.1f} s "
        f"({report.rate:,.0f} events/s); skipped {skipped} lines" + (f" ({why})" if why else "")
    )
    if report.skipped_lines:
        print(f"  first skipped lines: {', '.join(map(str, report.skipped_lines))}")
    if report.failure:
        print(f"demandmon replay: {report.failure}", file=sys.stderr)
    if report.interrupted:
        if report.unflushed:
            line = f"{report.unflushed:,} events still being sent may or may not be on Kafka"
        else:
            line = "the events above were sent and flushed"
        print(f"replay interrupted: {line}", file=sys.stderr)
        return 130
    _record_sent(settings, args.source, report.sent)
    if report.failure:
        return 1
    source_note = "" if args.source == LIVE_SOURCE else f" under source '{args.source}'"
    print(f"  topic {settings.events_topic}{source_note}")
    return 0
