"""Turn a batch of consumed Kafka messages into per-shard entries for the apply script.

Pure: decoding, validation, source resolution and classification happen here, so the
agent only moves bytes and the Lua script only sees clean, typed entries, laid out as
``demandmon.state.record`` defines them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

from agents.classify import RcrpMapping
from demandmon.state.record import EVENT, Entry, EventEntry, reject_entry
from schemas import ContractError, IncidentEvent, decode_event
from schemas.vocabulary import (
    BAD_SOURCE,
    LIVE_SOURCE,
    MALFORMED_JSON,
    SCHEMA_VIOLATION,
    SOURCE_HEADER,
    TOO_FAR_FUTURE,
    UNKNOWN_SOURCE,
    valid_source,
)

NOT_REGISTERED = ContractError(BAD_SOURCE, "source is not registered")


# Not frozen (frozen costs a microsecond per message on the hot path); compared and hashed
# by identity: a message is the one Kafka gave us, never rebuilt.
@dataclass(slots=True, eq=False)
class Consumed:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] = ()
    timestamp_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Rejection:
    message: Consumed
    source: str
    reason: str
    detail: str


@dataclass
class Plan:
    shards: dict[tuple[str, int], list[Entry]] = field(default_factory=dict)
    rejections: list[Rejection] = field(default_factory=list)
    applied_candidates: int = 0

    def add(self, source: str, partition: int, entry: Entry) -> None:
        self.shards.setdefault((source, partition), []).append(entry)

    def without(self, partitions: Collection[int]) -> Plan:
        """The plan less these partitions' entries and rejections (they will be read
        again: rewound, or no longer this worker's)."""
        shards = {s: e for s, e in self.shards.items() if s[1] not in partitions}
        rejections = [r for r in self.rejections if r.message.partition not in partitions]
        kept = sum(1 for entries in shards.values() for e in entries if e[1] == EVENT)
        return Plan(shards, rejections, kept)


@dataclass(frozen=True)
class PreparedBatch:
    """A batch planned and waiting to be applied."""

    messages: list[Consumed]
    plan: Plan
    now_ms: int

    def without(self, partitions: Collection[int]) -> PreparedBatch | None:
        """Less these partitions (rewound, or revoked); None when nothing is left."""
        if not partitions or not any(m.partition in partitions for m in self.messages):
            return self
        kept = [m for m in self.messages if m.partition not in partitions]
        return PreparedBatch(kept, self.plan.without(partitions), self.now_ms) if kept else None


def source_of(headers: Iterable[tuple[str, bytes]]) -> str | None:
    """The replay source a message carries, ``live`` when none; None when unusable (not
    ASCII, not a valid source name, not bytes at all). Never raises."""
    try:
        for name, value in headers:
            if name == SOURCE_HEADER:
                if not isinstance(value, bytes | bytearray):
                    return None
                text = value.decode("ascii")
                return text if valid_source(text) and text != UNKNOWN_SOURCE else None
    except Exception:  # not ASCII, or headers that are not (name, value) pairs
        return None
    return LIVE_SOURCE


def event_entry(offset: int, event: IncidentEvent, mapping: RcrpMapping) -> Entry:
    cat_public, cat_partner = ("", "")
    if event.opening_code is not None:
        cat_public, cat_partner = mapping.categories(event.opening_code)
    entry = EventEntry(
        offset=offset,
        is_event=EVENT,
        event_id=event.event_id,
        incident_id=event.incident_id,
        type=event.type,
        occurred_ms=event.occurred_at_ms,
        bcu=event.bcu or "",
        category_public=cat_public,
        category_partner=cat_partner,
        caller=event.caller or "",
        grade=event.grade or "",
        resource_id=event.resource_id or "",
        officers=event.officers or 0,
    )
    return list(entry)


def plan_batch(
    messages: Iterable[Consumed],
    mapping: RcrpMapping,
    max_bytes: int,
    now_ms: int,
    max_future_ms: int,
    registered: Collection[str],
) -> Plan:
    """Every message becomes an entry or a rejection (dead-lettered and counted); nothing a
    message holds can make this raise. ``occurred_at`` later than ``now_ms`` (the wall
    clock) plus ``max_future_ms`` is ``too_far_future`` whatever the source.

    A source is ``live`` or one of ``registered`` (the replay sources in the registry);
    a message naming any other is ``bad_source``, counted under ``unknown`` like an
    unusable header, so no producer can create sources (shards, series) at will."""
    plan = Plan()
    latest_ms = now_ms + max_future_ms
    too_far = ContractError(
        TOO_FAR_FUTURE, f"occurred_at is more than {max_future_ms / 1000:g} s past the wall clock"
    )
    for msg in messages:
        source = source_of(msg.headers)
        if source is None:
            reject(plan, msg, UNKNOWN_SOURCE, ContractError(BAD_SOURCE, "source header"))
            continue
        if source != LIVE_SOURCE and source not in registered:
            reject(plan, msg, UNKNOWN_SOURCE, NOT_REGISTERED)
            continue
        try:
            event = checked_event(msg, max_bytes)
        except ContractError as exc:
            reject(plan, msg, source, exc)
            continue
        except Exception:  # belt and braces: one message never stops the batch
            reject(plan, msg, source, ContractError(MALFORMED_JSON, "could not be decoded"))
            continue
        if event.occurred_at_ms > latest_ms:
            reject(plan, msg, source, too_far)
            continue
        plan.add(source, msg.partition, event_entry(msg.offset, event, mapping))
        plan.applied_candidates += 1
    return plan


def checked_event(msg: Consumed, max_bytes: int) -> IncidentEvent:
    """The message's valid event, keyed by its incident_id, or a ContractError."""
    event = decode_event(msg.value or b"", max_bytes)
    if not msg.key:
        raise ContractError(
            SCHEMA_VIOLATION, "message has no key (the key must be the incident_id)"
        )
    if msg.key != event.incident_id.encode():
        raise ContractError(SCHEMA_VIOLATION, "message key is not the incident_id")
    return event


def reject(plan: Plan, msg: Consumed, source: str, exc: ContractError) -> None:
    plan.rejections.append(Rejection(msg, source, exc.reason, exc.detail))
    # Counted through the same script, so the offset guard keeps the counter exact too.
    plan.add(source, msg.partition, reject_entry(msg.offset, exc.reason))
