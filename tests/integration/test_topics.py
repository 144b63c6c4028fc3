"""`ensure_topics` and `demandmon topics` against the real local broker: the topics get the
configured retention and replication, and an existing topic's too-short retention is
raised (never shortened), read back with describe_configs."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import InvalidReplicationFactorError

from demandmon.kafka_topics import ensure_topics
from demandmon.settings import Settings
from tests.conftest import REPO, Stack

pytestmark = pytest.mark.integration

DAY_MS = 86400 * 1000


@pytest.fixture
def admin(stack: Stack) -> Iterator[KafkaAdminClient]:
    client = KafkaAdminClient(bootstrap_servers=stack.kafka, request_timeout_ms=10000)
    try:
        yield client
    finally:
        client.close()


def _names() -> tuple[str, str]:
    topic = f"test.{uuid.uuid4().hex[:8]}.topics"
    return topic, f"{topic}.deadletter"


def _settings(stack: Stack, events: str, deadletter: str, **values: Any) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        kafka_bootstrap=stack.kafka,
        events_topic=events,
        deadletter_topic=deadletter,
        partitions=3,
        **values,
    )


def _retention(admin: KafkaAdminClient, name: str) -> str:
    resource = ConfigResource(ConfigResourceType.TOPIC, name, ["retention.ms"])
    described = admin.describe_configs([resource], config_filter="all")
    value: str = described["topic"][name]["retention.ms"]["value"]
    return value


def _replicas(admin: KafkaAdminClient, name: str) -> list[int]:
    """The replica count of each partition."""
    (topic,) = admin.describe_topics([name])
    return [len(p["replica_nodes"]) for p in topic["partitions"]]


def test_created_with_configured_retention_and_replication(
    stack: Stack, admin: KafkaAdminClient
) -> None:
    events, deadletter = _names()
    settings = _settings(stack, events, deadletter)
    report = ensure_topics(settings, wait_s=30)
    assert report.created == [events, deadletter]
    assert _retention(admin, events) == str(42 * DAY_MS)
    assert _retention(admin, deadletter) == str(30 * DAY_MS)
    assert _replicas(admin, events) == [1, 1, 1]
    assert _replicas(admin, deadletter) == [1]

    again = ensure_topics(settings)
    assert again.created == [] and again.retention_raised == {} and again.warnings == []


def test_forever_retention_stays_forever(stack: Stack, admin: KafkaAdminClient) -> None:
    events, deadletter = _names()
    ensure_topics(_settings(stack, events, deadletter, events_retention_s=-1))
    assert _retention(admin, events) == "-1"


def test_existing_short_retention_is_raised_by_the_command(
    stack: Stack, admin: KafkaAdminClient
) -> None:
    events, deadletter = _names()
    # As a fresh clone left them: the broker's default retention, and one day.
    admin.create_topics(
        {
            events: {"num_partitions": 3, "replication_factor": 1},
            deadletter: {"num_partitions": 1, "configs": {"retention.ms": str(DAY_MS)}},
        },
        wait_for_metadata=True,
    )
    broker_default = _retention(admin, events)
    assert int(broker_default) < 42 * DAY_MS  # Kafka's 7 days

    env = {
        **os.environ,
        **stack.env,
        "DEMANDMON_EVENTS_TOPIC": events,
        "DEMANDMON_DEADLETTER_TOPIC": deadletter,
        "PYTHONPATH": str(REPO),
    }
    result = subprocess.run(
        [sys.executable, "-m", "demandmon.cli", "topics"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{events}: exists; retention.ms raised from {broker_default} to {42 * DAY_MS}",
        f"{deadletter}: exists; retention.ms raised from {DAY_MS} to {30 * DAY_MS}",
    ]
    assert _retention(admin, events) == str(42 * DAY_MS)
    assert _retention(admin, deadletter) == str(30 * DAY_MS)


def test_existing_longer_retention_is_never_shortened(
    stack: Stack, admin: KafkaAdminClient
) -> None:
    events, deadletter = _names()
    admin.create_topics(
        {
            events: {"num_partitions": 3, "configs": {"retention.ms": "-1"}},
            deadletter: {"num_partitions": 1, "configs": {"retention.ms": str(90 * DAY_MS)}},
        },
        wait_for_metadata=True,
    )
    report = ensure_topics(_settings(stack, events, deadletter))
    assert report.created == [] and report.retention_raised == {}
    assert _retention(admin, events) == "-1"
    assert _retention(admin, deadletter) == str(90 * DAY_MS)


def test_replication_factor_reaches_the_broker(stack: Stack, admin: KafkaAdminClient) -> None:
    # One broker cannot hold two replicas: the broker refusing proves the factor is sent.
    events, deadletter = _names()
    with pytest.raises(InvalidReplicationFactorError):
        ensure_topics(_settings(stack, events, deadletter, kafka_replication_factor=2))
    assert events not in admin.list_topics()

    # Topics that exist with fewer replicas than configured are reported, not failed.
    events, deadletter = _names()
    ensure_topics(_settings(stack, events, deadletter))
    report = ensure_topics(_settings(stack, events, deadletter, kafka_replication_factor=2))
    assert [w.split(":")[0] for w in report.warnings] == [events, deadletter]
    assert "replication factor 1 is below the configured 2" in report.warnings[0]
