"""Send replay records to the incident topic, keyed by incident id, tagged by source."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from kafka import KafkaProducer
from kafka.errors import KafkaError

from demandmon.clients import ClientSetupError, KafkaUnavailable, kafka_failure, kafka_security
from demandmon.settings import Settings
from schemas.vocabulary import LIVE_SOURCE, SOURCE_HEADER
from streams.replay.reader import Record, Skipped, encode
from streams.replay.timing import Pacer


@dataclass
class ReplayReport:
    sent: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    skipped_lines: list[int] = field(default_factory=list)
    elapsed_s: float = 0.0
    interrupted: bool = False

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0


def make_producer(settings: Settings) -> KafkaProducer:
    """The replay's producer, with the settings' TLS and SASL. Idempotent (kafka-python's
    default), which WRITE on the events topic allows: no cluster ACL is needed. A failure
    to connect is a KafkaUnavailable of one line."""
    try:
        return _producer(settings)
    except (KafkaError, ClientSetupError) as exc:
        raise KafkaUnavailable(kafka_failure(settings, exc).line) from None


def _producer(settings: Settings) -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id="demandmon-replay",
        acks="all",
        linger_ms=20,
        batch_size=512 * 1024,
        max_request_size=2 * 1024 * 1024,
        compression_type=None,
        **kafka_security(settings),
    )


def source_headers(source: str) -> list[tuple[str, bytes]]:
    # The CAD feed sends no source; a replay under the name "live" imitates it.
    return [] if source == LIVE_SOURCE else [(SOURCE_HEADER, source.encode())]


def send_all(
    producer: KafkaProducer,
    topic: str,
    items: Iterable[Record | Skipped],
    source: str,
    shift_ms: int = 0,
    pacer: Pacer | None = None,
    progress: Callable[[ReplayReport], None] | None = None,
) -> ReplayReport:
    report = ReplayReport()
    headers = source_headers(source)
    started = time.monotonic()
    next_progress = started + 1.0
    try:
        for item in items:
            if isinstance(item, Skipped):
                report.skipped[item.reason] += 1
                if len(report.skipped_lines) < 20:
                    report.skipped_lines.append(item.line)
                continue
            if pacer is not None:
                wait = pacer.due_after_s(item.occurred_ms) - (time.monotonic() - started)
                if wait > 0:
                    time.sleep(wait)
            producer.send(topic, key=item.key, value=encode(item, shift_ms), headers=headers)
            report.sent += 1
            if progress is not None and time.monotonic() >= next_progress:
                report.elapsed_s = time.monotonic() - started
                progress(report)
                next_progress += 1.0
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        producer.flush()
        report.elapsed_s = time.monotonic() - started
    return report
