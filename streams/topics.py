"""The incident event topic and its dead-letter topic, created idempotently with the admin
client. `demandmon topics` runs it by hand; the worker and replay call it too."""

from __future__ import annotations

import sys
import time

from kafka import KafkaAdminClient
from kafka.errors import KafkaError, TopicAlreadyExistsError

from demandmon.cliargs import CommandParser
from demandmon.settings import Settings, settings_or_exit

# Dead letters are kept long enough to investigate and replay them.
DEADLETTER_RETENTION_MS = 30 * 86400 * 1000


class KafkaUnavailable(RuntimeError):
    pass


def admin_client(bootstrap: str, wait_s: float = 0) -> KafkaAdminClient:
    """An admin client, retrying for up to ``wait_s`` while the broker comes up."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return KafkaAdminClient(
                bootstrap_servers=bootstrap,
                client_id="demandmon-admin",
                request_timeout_ms=5000,
            )
        except KafkaError as exc:
            if time.monotonic() >= deadline:
                raise KafkaUnavailable(
                    f"Kafka at {bootstrap} is not answering ({type(exc).__name__})"
                ) from None
            time.sleep(1)


def ensure_topics(settings: Settings, wait_s: float = 0) -> list[str]:
    """Create the topics that are missing; returns the names created."""
    admin = admin_client(settings.kafka_bootstrap, wait_s)
    try:
        existing = set(admin.list_topics())
        wanted: dict[str, dict[str, object]] = {
            settings.events_topic: {"num_partitions": settings.partitions, "replication_factor": 1},
            settings.deadletter_topic: {
                "num_partitions": 1,
                "replication_factor": 1,
                "configs": {"retention.ms": str(DEADLETTER_RETENTION_MS)},
            },
        }
        created = []
        for name, options in wanted.items():
            if name in existing:
                continue
            try:
                admin.create_topics({name: options}, wait_for_metadata=True)
                created.append(name)
            except TopicAlreadyExistsError:
                pass  # another worker won the race: same outcome
        return created
    finally:
        admin.close()


def main(argv: list[str]) -> int:
    parser = CommandParser(prog="demandmon topics", description=__doc__)
    parser.parse_args(argv)
    settings = settings_or_exit("demandmon topics")
    try:
        created = ensure_topics(settings, wait_s=30)
    except (KafkaUnavailable, KafkaError) as exc:
        print(f"demandmon topics: {exc}", file=sys.stderr)
        return 1
    for name in (settings.events_topic, settings.deadletter_topic):
        print(f"{name}: {'created' if name in created else 'exists'}")
    return 0
