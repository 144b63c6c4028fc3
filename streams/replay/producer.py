"""Send replay records to the incident topic, keyed by incident id, tagged by source.

The replay produces with librdkafka (confluent-kafka): ten times and more what kafka-python
sends on the same box (``bench/replay_speed.py --levers`` measures both). Partitions are
chosen by murmur2, as kafka-python and the Java client choose them, so an incident's
events land where every other producer of the topic puts them. Admin work (topics, ACLs)
stays with kafka-python (demandmon.kafka_topics).

What the summary calls sent is what Kafka acknowledged: a message librdkafka could not
deliver is reported by its delivery callback and counted apart, never as sent.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType

from streams.replay.kafka_client import (
    POLL_EVERY,
    ReplayProducer,
    source_headers,
)
from streams.replay.reader import Batch, Record, Skipped, encode
from streams.replay.timing import Pacer


@dataclass
class ReplayReport:
    sent: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    skipped_lines: list[int] = field(default_factory=list)
    elapsed_s: float = 0.0
    interrupted: bool = False
    # Events handed to Kafka that it did not acknowledge, and why (one line, no content).
    failed: int = 0
    failure: str = ""
    # Events still in the producer when a second Ctrl-C cut the final flush short: they
    # may or may not be on Kafka, so they are not counted as sent.
    unflushed: int = 0

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0


@contextmanager
def ctrl_c_sets(stop: threading.Event) -> Iterator[None]:
    """While inside, the first Ctrl-C (SIGINT) sets ``stop`` instead of raising
    KeyboardInterrupt wherever the program happens to be (between handing an event to
    Kafka and counting it, say); a second one raises as usual. Outside the main thread,
    where no handler can be set, Ctrl-C raises as usual."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def first(_signum: int, _frame: FrameType | None) -> None:
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, first)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)


def send_all(
    producer: ReplayProducer,
    topic: str,
    items: Iterable[Record | Batch | Skipped],
    source: str,
    shift_ms: int = 0,
    pacer: Pacer | None = None,
    progress: Callable[[ReplayReport], None] | None = None,
    stop: threading.Event | None = None,
) -> ReplayReport:
    """Send every Record and count every Skipped line. Ctrl-C (or ``stop`` set) stops it
    after the event in hand; so do deliveries Kafka failed, and a fatal producer error.
    Always ends by flushing, so that what the report calls sent is on Kafka."""
    report = ReplayReport()
    stop = threading.Event() if stop is None else stop
    started = time.monotonic()
    with ctrl_c_sets(stop):
        try:
            _send(producer, topic, items, source, shift_ms, pacer, progress, stop, report, started)
        except KeyboardInterrupt:  # where no handler could be set (not the main thread)
            stop.set()
        finally:
            _flush(producer, report)
            report.elapsed_s = time.monotonic() - started
    report.interrupted = stop.is_set()
    return report


def _send(
    producer: ReplayProducer,
    topic: str,
    items: Iterable[Record | Batch | Skipped],
    source: str,
    shift_ms: int,
    pacer: Pacer | None,
    progress: Callable[[ReplayReport], None] | None,
    stop: threading.Event,
    report: ReplayReport,
    started: float,
) -> None:
    """The loop: ``report.sent`` counts the events handed to the producer (_flush then
    takes away the ones Kafka did not take)."""
    headers = source_headers(source)
    produce, poll = producer.kafka.produce, producer.kafka.poll
    deliveries = producer.deliveries
    next_progress = started + 1.0

    def halted() -> bool:
        return stop.is_set() or deliveries.failed > 0 or bool(deliveries.fatal)

    def show() -> None:
        nonlocal next_progress
        if progress is not None and time.monotonic() >= next_progress:
            report.elapsed_s = time.monotonic() - started
            progress(report)
            next_progress += 1.0

    sent = 0
    for item in items:
        keys: Sequence[bytes]
        values: Sequence[bytes]
        if type(item) is Batch:  # sent as they are: only unshifted, unpaced replays
            keys, values = item.keys, item.values
        elif type(item) is Record:
            if pacer is not None:
                wait = pacer.due_after_s(item.occurred_ms) - (time.monotonic() - started)
                if wait > 0 and stop.wait(wait):
                    return
            keys, values = (item.key,), (encode(item, shift_ms),)
        else:
            assert type(item) is Skipped
            report.skipped[item.reason] += 1
            if len(report.skipped_lines) < 20:
                report.skipped_lines.append(item.line)
            keys = values = ()
        for key, value in zip(keys, values, strict=True):
            while True:
                try:
                    produce(topic, value, key, headers=headers)
                    break
                except BufferError:  # the producer's queue is full: let it send some
                    poll(0.05)
                    if halted():
                        return
            sent += 1
            report.sent = sent
            if sent % POLL_EVERY == 0:
                poll(0)  # serves the callbacks: failures show up here
                if halted():
                    return
                show()
        show()


def _flush(producer: ReplayProducer, report: ReplayReport) -> None:
    """Wait until Kafka has taken, or failed, every event handed to the producer; then
    the failed ones are not sent. A second Ctrl-C cuts the wait short: what is left may
    or may not reach Kafka, so it is counted apart."""
    try:
        left = producer.kafka.flush(-1)
    except KeyboardInterrupt:
        left = producer.kafka.flush(0)
    deliveries = producer.deliveries
    report.unflushed = left
    report.failed = deliveries.failed
    report.sent -= deliveries.failed + left
    if deliveries.failed or deliveries.fatal:
        report.failure = producer.failure_line(deliveries.failed + left)
