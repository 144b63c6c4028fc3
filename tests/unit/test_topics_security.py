"""Kafka ACLs as code and the secured start-up checks: `demandmon topics` (admin) grants
exactly the ACLs of docs/security.md, LITERAL, idempotently, and only when Kafka is
secured; the worker and replay then only check their topics exist. Also the worker's own
start-up pieces: the web-port check and the fail-fast Redis wait. No broker needed."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest
import redis
from kafka.admin import ACLOperation, ACLPermissionType, ACLResourcePatternType, ResourceType
from kafka.errors import KafkaError

from agents import app as worker
from demandmon import clients, kafka_acls
from demandmon import kafka_topics as topics
from demandmon.clients import KafkaUnavailable, RedisUnavailable
from demandmon.kafka_acls import Grant, acl_grants
from demandmon.kafka_topics import check_topics, topics_ready
from demandmon.settings import Settings

SECURE = {
    "kafka_security_protocol": "SASL_SSL",
    "kafka_username": "admin",
    "kafka_password": "pw",
    "events_topic": "ev",
    "deadletter_topic": "dl",
    "consumer_group": "grp",
}


def _settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


class FakeAdmin:
    """The parts of KafkaAdminClient that ACLs and topic checks use."""

    def __init__(self, topics: dict[str, int] | None = None) -> None:
        self.acls: list[Any] = []
        self.created_batches: list[list[Any]] = []
        self.topics = topics if topics is not None else {"ev": 0, "dl": 0}
        self.closed = False

    def describe_acls(self, acl_filter: Any) -> tuple[list[Any], Any]:
        assert acl_filter.resource_pattern.resource_type == ResourceType.ANY
        return list(self.acls), None

    def create_acls(self, acls: list[Any]) -> dict[str, list[Any]]:
        self.created_batches.append(acls)
        self.acls.extend(acls)
        return {"succeeded": acls, "failed": []}

    def list_topics(self) -> list[str]:
        return [name for name, code in self.topics.items() if code == 0]

    def describe_topics(self, names: list[str]) -> list[dict[str, Any]]:
        return [{"name": n, "error_code": self.topics.get(n, topics.UNKNOWN_TOPIC)} for n in names]

    def close(self) -> None:
        self.closed = True


def test_the_grants_are_exactly_those_of_the_spec() -> None:
    settings = _settings(**SECURE, kafka_worker_user="w1", kafka_replay_user="r1")
    assert sorted(acl_grants(settings)) == sorted(
        [
            Grant("w1", "TOPIC", "ev", "READ"),
            Grant("w1", "TOPIC", "ev", "DESCRIBE"),
            Grant("w1", "GROUP", "grp", "READ"),
            Grant("w1", "TOPIC", "dl", "WRITE"),
            Grant("w1", "TOPIC", "dl", "DESCRIBE"),
            Grant("r1", "TOPIC", "ev", "WRITE"),
            Grant("r1", "TOPIC", "ev", "DESCRIBE"),
        ]
    )


def test_a_grant_is_an_allow_acl_on_a_literal_name_from_any_host() -> None:
    acl = Grant("worker", "GROUP", "grp", "READ").acl()
    assert acl.principal == "User:worker"
    assert acl.host == "*"
    assert acl.permission_type == ACLPermissionType.ALLOW
    assert acl.operation == ACLOperation.READ
    assert acl.resource_pattern.resource_type == ResourceType.GROUP
    assert acl.resource_pattern.resource_name == "grp"
    assert acl.resource_pattern.pattern_type == ACLResourcePatternType.LITERAL


def test_granting_is_idempotent() -> None:
    settings = _settings(**SECURE)
    admin = FakeAdmin()
    first = kafka_acls.grant_acls(admin, settings)
    assert len(first) == 7
    assert kafka_acls.grant_acls(admin, settings) == []
    assert len(admin.created_batches) == 1


def test_only_the_missing_grants_are_created() -> None:
    settings = _settings(**SECURE)
    admin = FakeAdmin()
    admin.acls = [Grant("worker", "TOPIC", "ev", "READ").acl()]
    created = kafka_acls.grant_acls(admin, settings)
    assert Grant("worker", "TOPIC", "ev", "READ") not in created
    assert len(created) == 6


def test_a_refused_grant_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    admin = FakeAdmin()
    admin.create_acls = lambda acls: {"succeeded": [], "failed": [KeyError] * len(acls)}  # type: ignore[method-assign]
    with pytest.raises(KafkaUnavailable, match=r"granting 7 ACLs failed \(KeyError\)"):
        kafka_acls.grant_acls(admin, _settings(**SECURE))


@pytest.mark.parametrize(("protocol", "granted"), [("SASL_SSL", 7), ("PLAINTEXT", 0)])
def test_topics_grants_only_when_kafka_is_secured(
    monkeypatch: pytest.MonkeyPatch, protocol: str, granted: int
) -> None:
    admin = FakeAdmin()
    monkeypatch.setattr(topics, "admin_client", lambda settings, wait_s: admin)
    monkeypatch.setattr(topics, "_check_existing", lambda admin, spec, report: None)
    report = topics.ensure_topics(_settings(**{**SECURE, "kafka_security_protocol": protocol}))
    assert len(report.acls_granted) == granted
    assert len(admin.acls) == granted
    assert admin.closed


@pytest.mark.parametrize(
    ("present", "message"),
    [
        ({"dl": 0}, "events topic ev does not exist: run `demandmon topics` as admin"),
        ({"ev": 0}, "dead-letter topic dl does not exist: run `demandmon topics` as admin"),
        (
            {"ev": topics.TOPIC_DENIED, "dl": 0},
            "events topic ev does not exist or worker may not describe it: "
            "run `demandmon topics` as admin",
        ),
    ],
)
def test_a_secured_worker_checks_its_topics(
    monkeypatch: pytest.MonkeyPatch, present: dict[str, int], message: str
) -> None:
    admin = FakeAdmin(present)
    monkeypatch.setattr(topics, "admin_client", lambda settings, wait_s: admin)
    settings = _settings(**{**SECURE, "kafka_username": "worker"})
    with pytest.raises(KafkaUnavailable) as caught:
        check_topics(settings, ["ev", "dl"])
    assert str(caught.value).startswith(message)
    assert admin.closed


def test_secured_worker_and_replay_never_create_topics(monkeypatch: pytest.MonkeyPatch) -> None:
    admin = FakeAdmin({})
    monkeypatch.setattr(topics, "admin_client", lambda settings, wait_s: admin)
    admin.create_topics = lambda *a, **k: pytest.fail("created a topic")  # type: ignore[attr-defined]
    with pytest.raises(KafkaUnavailable, match="does not exist"):
        topics_ready(_settings(**SECURE), ["ev"])


def test_plain_worker_and_replay_create_topics(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(topics, "ensure_topics", lambda settings, wait_s: calls.append("ensure"))
    monkeypatch.setattr(topics, "check_topics", lambda *a: calls.append("check"))
    topics_ready(_settings(), ["ev"])
    topics_ready(_settings(**SECURE), ["ev"])
    assert calls == ["ensure", "check"]


def test_admin_client_stops_at_once_on_a_lasting_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[int] = []

    def refuse(**options: Any) -> None:
        attempts.append(1)
        raise KafkaError("Unable to bootstrap")

    monkeypatch.setattr(topics, "KafkaAdminClient", refuse)
    monkeypatch.setattr(topics, "kafka_refused", lambda settings: None)  # something listens
    monkeypatch.setattr(clients, "kafka_probe", lambda settings: clients.AUTH_FAILED)
    settings = _settings(kafka_bootstrap="127.0.0.1:9093", kafka_username="admin")
    with pytest.raises(KafkaUnavailable) as caught:
        topics.admin_client(settings, wait_s=60)
    assert str(caught.value) == "Kafka at 127.0.0.1:9093 as admin: authentication failed"
    assert attempts == [1]


# -- the worker's start-up -----------------------------------------------------------------


def test_web_port_in_use_names_the_bind_address() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        problem = worker.web_port_problem("127.0.0.1", port)
        assert problem == (
            f"web port 127.0.0.1:{port} is in use (another worker? set DEMANDMON_WORKER_WEB_PORT)"
        )
        # Binding every address conflicts with a listener on one of them.
        assert worker.web_port_problem("0.0.0.0", port) is not None
    assert worker.web_port_problem("127.0.0.1", port) is None


def test_web_port_on_an_address_not_here() -> None:
    problem = worker.web_port_problem("192.0.2.1", 6066)
    assert problem is not None
    assert problem.startswith("cannot listen on 192.0.2.1:6066")


class _RefusingRedis:
    def __init__(self, error: Exception) -> None:
        self.error = error
        self.pings = 0

    def ping(self) -> None:
        self.pings += 1
        raise self.error

    def close(self) -> None:
        pass


def test_the_worker_stops_at_once_on_a_wrong_redis_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = _RefusingRedis(redis.AuthenticationError("WRONGPASS"))
    monkeypatch.setattr(worker, "redis_client", lambda settings, timeout_s: client)
    monkeypatch.setattr(worker, "topics_ready", lambda *a, **k: pytest.fail("went on to Kafka"))
    settings = _settings(redis_url="rediss://127.0.0.1:6380/0", redis_username="worker")
    with pytest.raises(RedisUnavailable) as caught:
        worker.wait_for_services(settings, wait_s=60)
    assert str(caught.value) == ("Redis at rediss://worker@127.0.0.1:6380/0: authentication failed")
    assert client.pings == 1


def test_the_worker_waits_for_redis_to_come_up(monkeypatch: pytest.MonkeyPatch) -> None:
    client = _RefusingRedis(redis.ConnectionError("Error 111"))
    monkeypatch.setattr(worker, "redis_client", lambda settings, timeout_s: client)
    monkeypatch.setattr(time, "sleep", lambda s: None)
    with pytest.raises(RedisUnavailable, match="not answering"):
        worker.wait_for_services(_settings(), wait_s=0.05)
    assert client.pings >= 1
