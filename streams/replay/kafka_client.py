"""The replay's Kafka client: librdkafka (confluent-kafka) with the settings' TLS and SASL,
configured for throughput, and what it reports back (failed deliveries, fatal errors)."""

from __future__ import annotations

import logging
from typing import Any, Protocol

import confluent_kafka

from demandmon.clients import (
    ClientSetupError,
    KafkaUnavailable,
    client_ssl_context,
    kafka_failure,
    kafka_where,
)
from demandmon.settings import Settings
from schemas.vocabulary import LIVE_SOURCE, SOURCE_HEADER

# librdkafka's producer settings for the replay, chosen by bench/replay_speed.py: batches
# of up to 1 MiB, gathered for up to 20 ms, acknowledged by every in-sync replica,
# idempotent (WRITE on the events topic allows it: no cluster ACL is needed). Not
# compressed: lz4 and zstd sent no faster here, and every consumer of the topic would
# need their codec (aiokafka, which the worker uses, only with cramjam installed).
PRODUCER_CONFIG: dict[str, str | int | bool] = {
    "client.id": "demandmon-replay",
    "acks": "all",
    "enable.idempotence": True,
    "compression.type": "none",
    "linger.ms": 20,
    "batch.size": 1 << 20,
    "message.max.bytes": 2 << 20,
    "partitioner": "murmur2_random",
    # A message Kafka has not taken by then fails (and the replay says so) rather than
    # waiting for ever; kafka-python's default delivery timeout.
    "message.timeout.ms": 120_000,
    # The delivery callback is called for failures only.
    "delivery.report.only.error": True,
}
# How long the producer may take to show that it reaches the topic before sending.
CONNECT_S = 10.0
# Events sent between two polls of the producer (its error and delivery callbacks).
POLL_EVERY = 1024


# Message headers as confluent_kafka takes them.
Headers = list[tuple[str, str | bytes | None]]


class Kafka(Protocol):
    """What the replay uses of confluent_kafka.Producer (a fake in unit tests)."""

    def produce(self, topic: str, value: bytes, key: bytes, *, headers: Headers) -> None: ...

    def poll(self, timeout: float) -> int: ...

    def flush(self, timeout: float) -> int: ...


class Deliveries:
    """What librdkafka reports back: failed deliveries and errors of the client."""

    def __init__(self) -> None:
        self.failed = 0
        self.failure = ""
        self.fatal = ""

    def delivered(self, error: confluent_kafka.KafkaError | None, _message: object) -> None:
        if error is not None:  # only failures are reported (delivery.report.only.error)
            self.failed += 1
            self.failure = self.failure or error.str()

    def client_error(self, error: confluent_kafka.KafkaError) -> None:
        # Passing ones (a broker connection lost, then back) are retried by librdkafka and
        # show up as failed deliveries if they last; a fatal one ends the replay.
        if error.fatal():
            self.fatal = self.fatal or error.str()


class ReplayProducer:
    """A librdkafka producer and what it reported back."""

    def __init__(self, kafka: Kafka, deliveries: Deliveries, where: str) -> None:
        self.kafka = kafka
        self.deliveries = deliveries
        self.where = where  # how errors name Kafka: address and user

    def failure_line(self, failed: int) -> str:
        why = self.deliveries.fatal or self.deliveries.failure or "unknown error"
        return f"{self.where}: {failed:,} events not delivered ({why})"

    def close(self) -> None:
        """Wait, briefly, for what is queued (nothing, after send_all's flush)."""
        self.kafka.flush(5.0)


def _quiet_logger() -> logging.Logger:
    # librdkafka logs to stderr itself by default; errors reach the user through the
    # callbacks above, as one line, instead.
    logger = logging.getLogger("demandmon.replay.librdkafka")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    return logger


def librdkafka_config(settings: Settings) -> dict[str, Any]:
    """The settings' TLS and SASL in librdkafka's words (as demandmon.clients gives them
    to kafka-python and aiokafka), with what the build must support for them. A CA file
    that cannot be read is a ClientSetupError of one line."""
    protocol = settings.kafka_security_protocol
    features: list[str] = []
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap,
        "security.protocol": protocol.lower(),
    }
    if protocol in ("SSL", "SASL_SSL"):
        client_ssl_context(settings.kafka_ca_file)  # readable, or one line saying why not
        features.append("ssl")
        config["ssl.ca.location"] = settings.kafka_ca_file or "probe"
        config["ssl.endpoint.identification.algorithm"] = "https"
    if protocol.startswith("SASL"):
        mechanism = settings.kafka_sasl_mechanism
        features.append("sasl_scram" if mechanism.startswith("SCRAM") else "sasl_plain")
        config["sasl.mechanism"] = mechanism
        config["sasl.username"] = settings.kafka_username
        config["sasl.password"] = settings.kafka_password.get_secret_value()
    if features:  # construction fails at once if this build of librdkafka lacks one
        config["builtin.features"] = ",".join(features)
    return config


def replay_producer(settings: Settings, topic: str) -> ReplayProducer:
    """The replay's producer, with the settings' TLS and SASL, once it has read the
    topic's metadata (so a wrong password or certificate is found before anything is
    registered or sent). A failure is a KafkaUnavailable of one line."""
    deliveries = Deliveries()
    try:
        config = {**librdkafka_config(settings), **PRODUCER_CONFIG}
        kafka = confluent_kafka.Producer(
            config,
            on_delivery=deliveries.delivered,
            error_cb=deliveries.client_error,
            logger=_quiet_logger(),
        )
        kafka.list_topics(topic, timeout=CONNECT_S)
    except ClientSetupError as exc:
        raise KafkaUnavailable(kafka_failure(settings, exc).line) from None
    except confluent_kafka.KafkaException as exc:
        error = exc.args[0] if exc.args else None
        if isinstance(error, confluent_kafka.KafkaError) and error.code() in (
            confluent_kafka.KafkaError._INVALID_ARG,
            confluent_kafka.KafkaError._NOT_IMPLEMENTED,
        ):  # the configuration itself, e.g. a feature this build lacks: say which
            raise KafkaUnavailable(f"{kafka_where(settings)}: {error.str()}") from None
        raise KafkaUnavailable(kafka_failure(settings, exc).line) from None
    return ReplayProducer(kafka, deliveries, kafka_where(settings))


def source_headers(source: str) -> Headers:
    # The CAD feed sends no source; a replay under the name "live" imitates it.
    return [] if source == LIVE_SOURCE else [(SOURCE_HEADER, source.encode())]
