"""Which partitions, replication and configs `ensure_topics` asks for, and how it treats a
topic that already exists: retention is raised to the configured value, never shortened.
The broker side is tests/integration/test_topics.py."""

from __future__ import annotations

from typing import Any

import pytest
from kafka.errors import TopicAlreadyExistsError
from pydantic import ValidationError

from demandmon import kafka_topics as topics
from demandmon.clients import KafkaUnavailable
from demandmon.kafka_topics import (
    RETENTION_MS,
    TopicSpec,
    TopicsReport,
    keeps_at_least,
    retention_ms,
    retention_to_set,
    topic_specs,
)
from demandmon.settings import Settings

DAY_MS = 86400 * 1000


def _settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_defaults_keep_events_beyond_the_state_horizon(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "DEMANDMON_EVENTS_RETENTION_S",
        "DEMANDMON_DEADLETTER_RETENTION_S",
        "DEMANDMON_KAFKA_REPLICATION_FACTOR",
        "DEMANDMON_RETENTION_S",
        "DEMANDMON_PARTITIONS",
    ):
        monkeypatch.delenv(name, raising=False)
    settings = _settings()
    events, deadletter = topic_specs(settings)
    assert events == TopicSpec(settings.events_topic, 12, 1, {RETENTION_MS: str(42 * DAY_MS)})
    assert deadletter == TopicSpec(
        settings.deadletter_topic, 1, 1, {RETENTION_MS: str(30 * DAY_MS)}
    )
    assert int(events.configs[RETENTION_MS]) >= settings.retention_s * 1000


def test_specs_follow_the_settings() -> None:
    settings = _settings(
        events_topic="a.events",
        deadletter_topic="a.dead",
        partitions=6,
        events_retention_s=-1,
        deadletter_retention_s=7 * 86400,
        kafka_replication_factor=3,
    )
    events, deadletter = topic_specs(settings)
    assert events == TopicSpec("a.events", 6, 3, {RETENTION_MS: "-1"})
    assert deadletter == TopicSpec("a.dead", 1, 3, {RETENTION_MS: str(7 * DAY_MS)})


def test_create_options_are_what_kafka_python_takes() -> None:
    spec = TopicSpec("t", 4, 3, {RETENTION_MS: "1000"})
    options = spec.create_options()
    assert options == {
        "num_partitions": 4,
        "replication_factor": 3,
        "configs": {RETENTION_MS: "1000"},
    }
    assert options["configs"] is not spec.configs


@pytest.mark.parametrize(
    ("seconds", "expected"), [(-1, "-1"), (3600, "3600000"), (42 * 86400, str(42 * DAY_MS))]
)
def test_retention_ms(seconds: int, expected: str) -> None:
    assert retention_ms(seconds) == expected


@pytest.mark.parametrize(
    ("current", "wanted", "to_set"),
    [
        (str(7 * DAY_MS), str(42 * DAY_MS), str(42 * DAY_MS)),  # the broker default: raised
        (str(7 * DAY_MS), "-1", "-1"),  # forever wanted: raised to forever
        (str(42 * DAY_MS), str(42 * DAY_MS), None),  # already right
        (str(60 * DAY_MS), str(42 * DAY_MS), None),  # longer: never shortened
        ("-1", str(42 * DAY_MS), None),  # forever: never shortened
        ("-1", "-1", None),
    ],
)
def test_existing_retention_is_raised_never_shortened(
    current: str, wanted: str, to_set: str | None
) -> None:
    assert retention_to_set(current, wanted) == to_set
    assert keeps_at_least(int(current), int(wanted)) is (to_set is None)


def test_settings_refuse_an_events_retention_below_the_horizon() -> None:
    with pytest.raises(ValidationError, match="events_retention_s"):
        _settings(retention_s=35 * 86400, events_retention_s=7 * 86400)
    _settings(retention_s=35 * 86400, events_retention_s=-1)


def test_report_lines() -> None:
    spec = TopicSpec("ev", 12, 1, {RETENTION_MS: "100"})
    assert TopicsReport().describe(spec) == "ev: exists"
    assert TopicsReport(created=["ev"]).describe(spec) == (
        "ev: created (12 partitions, replication factor 1, retention.ms=100)"
    )
    raised = TopicsReport(retention_raised={"ev": ("50", "100")})
    assert raised.describe(spec) == "ev: exists; retention.ms raised from 50 to 100"


class FakeAdmin:
    """Just enough of KafkaAdminClient: topics with retention.ms and replica counts."""

    def __init__(self, topics: dict[str, tuple[str, int]], race: bool = False) -> None:
        self.topics = topics  # name -> (retention.ms, replicas)
        self.race = race  # list_topics misses them, as if another worker created them
        self.altered: list[tuple[str, dict[str, str]]] = []
        self.created: dict[str, dict[str, Any]] = {}
        self.closed = False

    def list_topics(self) -> list[str]:
        return [] if self.race else list(self.topics)

    def create_topics(self, new: dict[str, dict[str, Any]], wait_for_metadata: bool) -> None:
        for name, options in new.items():
            if name in self.topics:
                raise TopicAlreadyExistsError(name)
            self.created[name] = options
            self.topics[name] = (options["configs"][RETENTION_MS], options["replication_factor"])

    def describe_configs(self, resources: list[Any], config_filter: str) -> dict[str, Any]:
        assert config_filter == "all"  # the effective value, broker default included
        name = resources[0].name
        return {"topic": {name: {RETENTION_MS: {"value": self.topics[name][0]}}}}

    def alter_configs(self, resources: list[Any]) -> dict[str, Any]:
        resource = resources[0]
        self.altered.append((resource.name, dict(resource.configs)))
        self.topics[resource.name] = (resource.configs[RETENTION_MS], self.topics[resource.name][1])
        return {"topic": {resource.name: "OK"}}

    def describe_topics(self, names: list[str]) -> list[dict[str, Any]]:
        replicas = list(range(self.topics[names[0]][1]))
        return [{"name": names[0], "partitions": [{"replica_nodes": replicas}]}]

    def close(self) -> None:
        self.closed = True


def _ensure(monkeypatch: pytest.MonkeyPatch, admin: FakeAdmin, **values: Any) -> TopicsReport:
    monkeypatch.setattr(topics, "admin_client", lambda bootstrap, wait_s: admin)
    return topics.ensure_topics(_settings(events_topic="ev", deadletter_topic="dl", **values))


def test_missing_topics_are_created_as_specified(monkeypatch: pytest.MonkeyPatch) -> None:
    admin = FakeAdmin({})
    report = _ensure(monkeypatch, admin, kafka_replication_factor=3, partitions=4)
    assert report.created == ["ev", "dl"]
    assert admin.created["ev"] == {
        "num_partitions": 4,
        "replication_factor": 3,
        "configs": {RETENTION_MS: str(42 * DAY_MS)},
    }
    assert admin.created["dl"]["configs"] == {RETENTION_MS: str(30 * DAY_MS)}
    assert admin.altered == [] and report.warnings == [] and admin.closed


@pytest.mark.parametrize("race", [False, True])
def test_existing_short_retention_is_raised(monkeypatch: pytest.MonkeyPatch, race: bool) -> None:
    admin = FakeAdmin({"ev": (str(7 * DAY_MS), 1), "dl": (str(DAY_MS), 1)}, race=race)
    report = _ensure(monkeypatch, admin)
    assert report.created == []
    assert admin.altered == [
        ("ev", {RETENTION_MS: str(42 * DAY_MS)}),
        ("dl", {RETENTION_MS: str(30 * DAY_MS)}),
    ]
    assert report.retention_raised == {
        "ev": (str(7 * DAY_MS), str(42 * DAY_MS)),
        "dl": (str(DAY_MS), str(30 * DAY_MS)),
    }


def test_existing_longer_retention_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    admin = FakeAdmin({"ev": ("-1", 3), "dl": (str(90 * DAY_MS), 3)})
    report = _ensure(monkeypatch, admin, kafka_replication_factor=3)
    assert admin.altered == [] and report.retention_raised == {} and report.warnings == []


def test_existing_topic_with_fewer_replicas_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    admin = FakeAdmin({"ev": ("-1", 1), "dl": ("-1", 3)})
    report = _ensure(monkeypatch, admin, kafka_replication_factor=3)
    assert len(report.warnings) == 1
    assert report.warnings[0].startswith("ev: replication factor 1 is below the configured 3")


def test_unreadable_retention_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    admin = FakeAdmin({"ev": ("-1", 1), "dl": ("-1", 1)})
    monkeypatch.setattr(admin, "describe_configs", lambda resources, config_filter: {})
    with pytest.raises(KafkaUnavailable, match=r"ev: cannot read retention\.ms"):
        _ensure(monkeypatch, admin)
    assert admin.closed
