"""The Kafka ACLs of a secure deployment (docs/security.md, "Roles"): exactly those the
worker and replay need, on the configured names, granted idempotently by `demandmon
topics` as admin."""

from __future__ import annotations

from dataclasses import dataclass

from kafka import KafkaAdminClient
from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    ResourcePattern,
    ResourcePatternFilter,
    ResourceType,
)

from demandmon.clients import KafkaUnavailable
from demandmon.settings import Settings


@dataclass(frozen=True, order=True)
class Grant:
    """One ALLOW ACL on a LITERAL resource name, from any host."""

    user: str
    resource_type: str  # a kafka.admin.ResourceType name: TOPIC, GROUP, CLUSTER
    name: str
    operation: str  # a kafka.admin.ACLOperation name

    def acl(self) -> ACL:
        return ACL(
            principal=f"User:{self.user}",
            host="*",
            operation=ACLOperation[self.operation],
            permission_type=ACLPermissionType.ALLOW,
            resource_pattern=ResourcePattern(
                ResourceType[self.resource_type], self.name, ACLResourcePatternType.LITERAL
            ),
        )

    def __str__(self) -> str:
        return f"User:{self.user} {self.operation} on {self.resource_type} {self.name}"


def acl_grants(settings: Settings) -> list[Grant]:
    """Exactly the ACLs of docs/security.md on the configured names. The worker checks
    its topics exist by describing them, so it needs no DESCRIBE_CONFIGS; Kafka lets an
    idempotent producer in with WRITE on a topic (KIP-679; checked on 4.1.1 with both the
    worker's aiokafka and the replay's kafka-python producer), so no IDEMPOTENT_WRITE on
    the cluster is granted."""
    worker, replay = settings.kafka_worker_user, settings.kafka_replay_user
    events, deadletter = settings.events_topic, settings.deadletter_topic
    return [
        Grant(worker, "TOPIC", events, "READ"),
        Grant(worker, "TOPIC", events, "DESCRIBE"),
        Grant(worker, "GROUP", settings.consumer_group, "READ"),
        Grant(worker, "TOPIC", deadletter, "WRITE"),
        Grant(worker, "TOPIC", deadletter, "DESCRIBE"),
        Grant(replay, "TOPIC", events, "WRITE"),
        Grant(replay, "TOPIC", events, "DESCRIBE"),
    ]


def _grant_of(acl: ACL) -> Grant | None:
    pattern = acl.resource_pattern
    allowed = acl.permission_type == ACLPermissionType.ALLOW and acl.host == "*"
    if not allowed or pattern.pattern_type != ACLResourcePatternType.LITERAL:
        return None
    user = str(acl.principal).removeprefix("User:")
    return Grant(user, pattern.resource_type.name, pattern.resource_name, acl.operation.name)


def existing_grants(admin: KafkaAdminClient) -> set[Grant]:
    """Every ALLOW, LITERAL, any-host ACL the cluster holds."""
    everything = ACLFilter(
        principal=None,
        host=None,
        operation=ACLOperation.ANY,
        permission_type=ACLPermissionType.ANY,
        resource_pattern=ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY),
    )
    acls, _ = admin.describe_acls(everything)
    return {g for g in map(_grant_of, acls) if g is not None}


def grant_acls(admin: KafkaAdminClient, settings: Settings) -> list[Grant]:
    """Create the ACLs the cluster lacks (creating an existing one is a no-op anyway);
    returns those created."""
    missing = sorted(set(acl_grants(settings)) - existing_grants(admin))
    if not missing:
        return []
    result = admin.create_acls([g.acl() for g in missing])
    failed = result.get("failed") or []
    if failed:
        names = ", ".join(sorted({getattr(f, "__name__", str(f)) for f in failed}))
        raise KafkaUnavailable(f"granting {len(failed)} ACLs failed ({names})")
    return missing
