"""The incident event topic and its dead-letter topic, created idempotently with the admin
client. `demandmon topics` (streams/topics.py) runs it by hand; on the plain stack the
worker and replay call it too (``topics_ready``), so it sits below all three.

The events topic must keep at least the state horizon (``DEMANDMON_EVENTS_RETENTION_S``),
so that Redis can be rebuilt from Kafka: a topic that already exists with a shorter
``retention.ms`` is raised to the configured value, never shortened.

When Kafka is secured (docs/security.md), `demandmon topics` runs as admin and also grants
the worker's and replay's ACLs, exactly those and idempotently; the worker and replay
then never create topics: they only check that theirs exist (``check_topics``)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import KafkaError, TopicAlreadyExistsError

from demandmon.clients import (
    ClientSetupError,
    KafkaUnavailable,
    kafka_failure,
    kafka_refused,
    kafka_secured,
    kafka_security,
)
from demandmon.kafka_acls import Grant, grant_acls
from demandmon.settings import Settings

RETENTION_MS = "retention.ms"
# One bootstrap attempt at most this long, so a wrong password or certificate is reported
# after one attempt instead of at the end of the whole wait.
ATTEMPT_S = 5.0
UNKNOWN_TOPIC = 3  # UNKNOWN_TOPIC_OR_PARTITION
TOPIC_DENIED = 29  # TOPIC_AUTHORIZATION_FAILED


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
    # The ACLs granted this time (secured Kafka only).
    acls_granted: list[Grant] = field(default_factory=list)

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


def admin_client(settings: Settings, wait_s: float = 0) -> KafkaAdminClient:
    """An admin client with the settings' TLS and SASL, retrying for up to ``wait_s``
    while the broker comes up; a wrong password or certificate is one line at once, and
    so is a refused port (nothing listens there: a wrong port, or no stack)."""
    deadline = time.monotonic() + wait_s
    while True:
        refused = kafka_refused(settings)
        if refused is not None:
            raise KafkaUnavailable(refused.line)
        attempt_s = min(ATTEMPT_S, max(2.0, deadline - time.monotonic()))
        try:
            return KafkaAdminClient(
                bootstrap_servers=settings.kafka_bootstrap,
                client_id="demandmon-admin",
                request_timeout_ms=5000,
                bootstrap_timeout_ms=int(attempt_s * 1000),
                **kafka_security(settings),
            )
        except (KafkaError, ClientSetupError) as exc:
            failure = kafka_failure(settings, exc)
            if not failure.retry or time.monotonic() >= deadline:
                raise KafkaUnavailable(failure.line) from None
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
    exist; when Kafka is secured, also grant the worker's and replay's ACLs. Returns what
    it did."""
    admin = admin_client(settings, wait_s)
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
        if kafka_secured(settings):
            report.acls_granted = grant_acls(admin, settings)
        return report
    finally:
        admin.close()


def check_topics(settings: Settings, names: list[str], wait_s: float = 0) -> None:
    """When Kafka is secured the worker and replay never create topics: theirs must exist
    (and be theirs to describe), else one line saying to run `demandmon topics`."""
    admin = admin_client(settings, wait_s)
    try:
        described = {t.get("name"): t.get("error_code", 0) for t in admin.describe_topics(names)}
    finally:
        admin.close()
    nouns = {settings.events_topic: "events topic", settings.deadletter_topic: "dead-letter topic"}
    for name in names:
        noun = nouns.get(name, "topic")
        code = described.get(name, UNKNOWN_TOPIC)
        if code == UNKNOWN_TOPIC:
            raise KafkaUnavailable(f"{noun} {name} does not exist: run `demandmon topics` as admin")
        if code == TOPIC_DENIED:
            who = settings.kafka_username or "this user"
            # Kafka does not say whether a topic one may not describe exists.
            raise KafkaUnavailable(
                f"{noun} {name} does not exist or {who} may not describe it: "
                "run `demandmon topics` as admin"
            )
        if code:
            raise KafkaUnavailable(f"{noun} {name}: Kafka error code {code}")


def topics_ready(settings: Settings, names: list[str], wait_s: float = 0) -> None:
    """What the worker and replay do before they start: on the plain stack create the
    topics (idempotently); when Kafka is secured only check that ``names`` exist. Any
    failure is a KafkaUnavailable of one line."""
    try:
        if kafka_secured(settings):
            check_topics(settings, names, wait_s)
        else:
            ensure_topics(settings, wait_s)
    except KafkaError as exc:
        raise KafkaUnavailable(kafka_failure(settings, exc).line) from None
