"""The replay's send loop against a fake librdkafka producer, and its client settings."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import confluent_kafka
import pytest
from pydantic import SecretStr

from demandmon.clients import ClientSetupError
from demandmon.settings import Settings
from streams.replay.kafka_client import (
    PRODUCER_CONFIG,
    Deliveries,
    Headers,
    ReplayProducer,
    librdkafka_config,
)
from streams.replay.producer import ctrl_c_sets, send_all
from streams.replay.reader import Batch, Record, Skipped
from streams.replay.timing import Pacer
from tests.unit.pki import Pki, pki_fixture  # noqa: F401  (the "pki" fixture)

TOPIC = "t"
TIMED_OUT = confluent_kafka.KafkaError(confluent_kafka.KafkaError._MSG_TIMED_OUT)


class FakeKafka:
    """confluent_kafka.Producer as the replay uses it: ``produce`` queues, ``poll`` and
    ``flush`` deliver what is queued (failing the keys in ``fail``), reporting failures to
    the Deliveries as librdkafka would."""

    def __init__(self, deliveries: Deliveries, fail: frozenset[bytes] = frozenset(), full: int = 0):
        self.deliveries = deliveries
        self.fail = fail
        self.full = full  # BufferErrors to raise before accepting the next message
        self.queued: list[tuple[bytes, bytes, Headers]] = []
        self.delivered: list[tuple[bytes, bytes, Headers]] = []
        self.polls = 0

    def produce(self, topic: str, value: bytes, key: bytes, *, headers: Headers) -> None:
        assert topic == TOPIC
        if self.full:
            self.full -= 1
            raise BufferError("Local: Queue full")
        self.queued.append((key, value, headers))

    def poll(self, timeout: float) -> int:
        self.polls += 1
        served = len(self.queued)
        for message in self.queued:
            if message[0] in self.fail:
                self.deliveries.delivered(TIMED_OUT, None)
            else:
                self.delivered.append(message)
        self.queued = []
        return served

    def flush(self, timeout: float) -> int:
        self.poll(timeout)
        return 0


def _producer(
    fail: frozenset[bytes] = frozenset(), full: int = 0
) -> tuple[ReplayProducer, FakeKafka]:
    deliveries = Deliveries()
    kafka = FakeKafka(deliveries, fail, full)
    return ReplayProducer(kafka, deliveries, "Kafka at 127.0.0.1:9"), kafka


def _record(n: int, occurred_ms: int = 0) -> Record:
    return Record(n, f"K{n}".encode(), occurred_ms, {"incident_id": f"K{n}", "n": n})


def _batch(first: int, count: int) -> Batch:
    keys = [f"K{n}".encode() for n in range(first, first + count)]
    return Batch(first, keys, [b"v" + key for key in keys])


def test_records_batches_and_skipped_lines_are_sent_in_order_with_the_source() -> None:
    producer, kafka = _producer()
    items: list[Record | Batch | Skipped] = [
        _record(1),
        Skipped(2, "not JSON"),
        _batch(3, 3000),
        *(Skipped(n, "no incident_id") for n in range(3003, 3030)),
        _record(3030),
    ]
    report = send_all(producer, TOPIC, items, "nov-2023")
    keys = [key for key, _, _ in kafka.delivered]
    assert keys == [b"K1", *(f"K{n}".encode() for n in range(3, 3003)), b"K3030"]
    assert kafka.delivered[0][1] == b'{"incident_id":"K1","n":1}'
    assert kafka.delivered[1][1] == b"vK3"
    assert {headers[0] for _, _, headers in kafka.delivered} == {("demandmon-source", b"nov-2023")}
    assert report.sent == 3002 and not report.failure and not report.interrupted
    assert report.skipped == {"not JSON": 1, "no incident_id": 27}
    assert report.skipped_lines == [2, *range(3003, 3022)]  # the first 20
    assert kafka.polls > 2  # served while sending, not only at the end


def test_live_carries_no_source_header() -> None:
    producer, kafka = _producer()
    send_all(producer, TOPIC, [_record(1)], "live")
    assert kafka.delivered[0][2] == []


def test_a_full_queue_is_waited_out_and_nothing_is_lost() -> None:
    producer, kafka = _producer(full=3)
    report = send_all(producer, TOPIC, [_batch(1, 10)], "s")
    assert len(kafka.delivered) == report.sent == 10


def test_failed_deliveries_stop_the_replay_and_are_never_counted_as_sent() -> None:
    producer, kafka = _producer(fail=frozenset({b"K5"}))
    report = send_all(producer, TOPIC, [_batch(1, 5000)], "s")
    # Sending stops at the poll that reports the failure, then what was handed is flushed.
    assert report.failed == 1
    assert report.sent == len(kafka.delivered) < 5000 - 1
    assert report.failure == (
        "Kafka at 127.0.0.1:9: 1 events not delivered (Local: Message timed out)"
    )


def test_a_stop_midway_flushes_what_was_handed_and_reports_it_sent() -> None:
    producer, kafka = _producer()
    stop = threading.Event()

    def records() -> Iterator[Record]:
        for n in range(20_000):
            if n == 5000:
                stop.set()  # as Ctrl-C does, at any moment
            yield _record(n)

    report = send_all(producer, TOPIC, records(), "s", stop=stop)
    assert report.interrupted
    assert 5000 <= report.sent == len(kafka.delivered) < 20_000
    assert not kafka.queued


def test_a_paced_replay_stops_at_once_when_asked() -> None:
    producer, _ = _producer()
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    # At 1x, an hour apart: the second event would wait an hour.
    items = [_record(1, 0), _record(2, 3_600_000)]
    report = send_all(producer, TOPIC, items, "s", pacer=Pacer(1.0, 0), stop=stop)
    assert report.interrupted and report.sent == 1 and report.elapsed_s < 30


def test_the_first_ctrl_c_sets_the_stop_and_the_second_interrupts() -> None:
    stop = threading.Event()
    before = signal.getsignal(signal.SIGINT)
    with ctrl_c_sets(stop):
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.wait(5)
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            threading.Event().wait(5)
    assert signal.getsignal(signal.SIGINT) is before


def _settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_plaintext_needs_nothing_of_librdkafka() -> None:
    config = librdkafka_config(_settings(kafka_bootstrap="127.0.0.1:9092"))
    assert config == {"bootstrap.servers": "127.0.0.1:9092", "security.protocol": "plaintext"}


def test_sasl_ssl_scram_with_the_ca_of_the_settings(pki: Pki) -> None:
    settings = _settings(
        kafka_bootstrap="127.0.0.1:9093",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_username="replay",
        kafka_password=SecretStr("s3cret"),
        kafka_ca_file=str(pki.ca),
    )
    config = librdkafka_config(settings)
    assert config == {
        "bootstrap.servers": "127.0.0.1:9093",
        "security.protocol": "sasl_ssl",
        "ssl.ca.location": str(pki.ca),
        "ssl.endpoint.identification.algorithm": "https",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "replay",
        "sasl.password": "s3cret",
        "builtin.features": "ssl,sasl_scram",
    }
    # This build of librdkafka takes it (it refuses a feature it was built without),
    # with the replay's settings; nothing connects until a message is sent.
    confluent_kafka.Producer({**config, **PRODUCER_CONFIG})


def test_an_unreadable_ca_file_is_one_line(tmp_path: Path) -> None:
    settings = _settings(kafka_security_protocol="SSL", kafka_ca_file=str(tmp_path / "no.pem"))
    with pytest.raises(ClientSetupError, match="cannot read the CA file"):
        librdkafka_config(settings)
