"""The incident event topic and its dead-letter topic, created idempotently with the admin
client. `demandmon topics` runs it by hand; the worker and replay call it too.

The events topic must keep at least the state horizon (``DEMANDMON_EVENTS_RETENTION_S``),
so that Redis can be rebuilt from Kafka: a topic that already exists with a shorter
``retention.ms`` is raised to the configured value, never shortened."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import KafkaError, TopicAlreadyExistsError

from demandmon.cliargs import CommandParser
from demandmon.settings import Settings, settings_or_exit

RETENTION_MS = "retention.ms"


class KafkaUnavailable(RuntimeError):
    pass


class TopicConfigError(KafkaUnavailable):
    """A topic's configuration could not be read or changed (a KafkaUnavailable, so every
    caller reports it in one line)."""


@dataclass(frozen=True)
class TopicSpec:
    """One topic as the settings want it."""

    name: str
    partitions: int
    replication_factor: int
    configs: dict[str, str]

    def create_options(self) -> dict[str, object]:
        """The options kafka-python's ``create_topics`` takes for this topic."""
        return {
            "num_partitions": self.partitions,
            "replication_factor": self.replication_factor,
            "configs": dict(self.configs),
        }


@dataclass
class TopicsReport:
    """What ``ensure_topics`` did."""

    created: list[str] = field(default_factory=list)
    # topic -> (retention.ms before, retention.ms after)
    retention_raised: dict[str, tuple[str, str]] = field(default_factory=dict)
    # Problems it cannot fix itself, one line each (no topic content).
    warnings: list[str] = field(default_factory=list)

    def describe(self, spec: TopicSpec) -> str:
        """One line for a topic: created, raised or left as it was."""
        name = spec.name
        if name in self.created:
            return (
                f"{name}: created ({spec.partitions} partitions, replication factor "
                f"{spec.replication_factor}, {RETENTION_MS}={spec.configs[RETENTION_MS]})"
            )
        if name in self.retention_raised:
            before, after = self.retention_raised[name]
            return f"{name}: exists; {RETENTION_MS} raised from {before} to {after}"
        return f"{name}: exists"


def retention_ms(seconds: int) -> str:
    """Kafka's ``retention.ms`` for a retention in seconds; -1 (keep forever) stays -1."""
    return "-1" if seconds == -1 else str(seconds * 1000)


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """The topics the settings ask for: partitions, replication and configs."""
    factor = settings.kafka_replication_factor
    return [
        TopicSpec(
            settings.events_topic,
            settings.partitions,
            factor,
            {RETENTION_MS: retention_ms(settings.events_retention_s)},
        ),
        # Dead letters are kept long enough to investigate and replay them.
        TopicSpec(
            settings.deadletter_topic,
            1,
            factor,
            {RETENTION_MS: retention_ms(settings.deadletter_retention_s)},
        ),
    ]


def keeps_at_least(current_ms: int, wanted_ms: int) -> bool:
    """Whether a retention of ``current_ms`` keeps messages as long as ``wanted_ms``
    (-1 is forever)."""
    if current_ms == -1:
        return True
    if wanted_ms == -1:
        return False
    return current_ms >= wanted_ms


def retention_to_set(current: str, wanted: str) -> str | None:
    """The ``retention.ms`` to give an existing topic, or None to leave it: an existing
    topic's retention is raised to the configured value and never shortened."""
    return None if keeps_at_least(int(current), int(wanted)) else wanted


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


def _current_retention(admin: KafkaAdminClient, name: str) -> str:
    """The topic's effective ``retention.ms`` (its own override or the broker default)."""
    resource = ConfigResource(ConfigResourceType.TOPIC, name, [RETENTION_MS])
    described = admin.describe_configs([resource], config_filter="all")
    entry = described.get("topic", {}).get(name, {}).get(RETENTION_MS)
    value = entry.get("value") if isinstance(entry, dict) else None
    if not isinstance(value, str):
        raise TopicConfigError(f"{name}: cannot read {RETENTION_MS} (describe configs refused?)")
    return value


def _set_retention(admin: KafkaAdminClient, name: str, value: str) -> None:
    resource = ConfigResource(ConfigResourceType.TOPIC, name, {RETENTION_MS: value})
    result = admin.alter_configs([resource])
    outcome = result.get("topic", {}).get(name)
    if outcome != "OK":
        raise TopicConfigError(f"{name}: cannot set {RETENTION_MS}={value}: {outcome}")


def _replication_factor(admin: KafkaAdminClient, name: str) -> int | None:
    """The smallest replica count among the topic's partitions (None if not described)."""
    for topic in admin.describe_topics([name]):
        if topic.get("name") == name and topic.get("partitions"):
            return min(len(p.get("replica_nodes") or []) for p in topic["partitions"])
    return None


def _check_existing(admin: KafkaAdminClient, spec: TopicSpec, report: TopicsReport) -> None:
    current = _current_retention(admin, spec.name)
    wanted = spec.configs[RETENTION_MS]
    target = retention_to_set(current, wanted)
    if target is not None:
        _set_retention(admin, spec.name, target)
        report.retention_raised[spec.name] = (current, target)
    factor = _replication_factor(admin, spec.name)
    if factor is not None and factor < spec.replication_factor:
        report.warnings.append(
            f"{spec.name}: replication factor {factor} is below the configured "
            f"{spec.replication_factor}; configuration cannot change it: reassign its "
            "partitions (kafka-reassign-partitions.sh)"
        )


def ensure_topics(settings: Settings, wait_s: float = 0) -> TopicsReport:
    """Create the topics that are missing and raise a too-short retention on those that
    exist; returns what it did."""
    admin = admin_client(settings.kafka_bootstrap, wait_s)
    report = TopicsReport()
    try:
        existing = set(admin.list_topics())
        for spec in topic_specs(settings):
            if spec.name not in existing:
                try:
                    admin.create_topics({spec.name: spec.create_options()}, wait_for_metadata=True)
                    report.created.append(spec.name)
                    continue
                except TopicAlreadyExistsError:
                    pass  # another worker won the race: check it like any existing topic
            _check_existing(admin, spec, report)
        return report
    finally:
        admin.close()


def main(argv: list[str]) -> int:
    parser = CommandParser(prog="demandmon topics", description=__doc__)
    parser.parse_args(argv)
    settings = settings_or_exit("demandmon topics")
    try:
        report = ensure_topics(settings, wait_s=30)
    except (KafkaUnavailable, KafkaError) as exc:
        print(f"demandmon topics: {exc}", file=sys.stderr)
        return 1
    for spec in topic_specs(settings):
        print(report.describe(spec))
    for warning in report.warnings:
        print(f"demandmon topics: warning: {warning}", file=sys.stderr)
    return 0
