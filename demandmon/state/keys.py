"""Redis key layout. Every key of one (source, partition) shard shares a hash tag, so one
batch touches one Redis Cluster slot. Keys hold only allow-listed values (prefix, source
name, partition number, BCU, grade, bucket start); incident and event ids live inside
hashes and sorted sets, never in key names."""

from __future__ import annotations

from typing import Final

# The keys of one shard, after its prefix (`shard`); demandmon.state.record has the
# legend of what the hashes hold.
META: Final = "meta"
LATE: Final = "late"
BUCKET_VERSIONS: Final = "bv"
DAY_VERSIONS: Final = "bd"
SHARD_KEYS: Final[dict[str, str]] = {
    META: "hash: the shard's position, times and event counters (record.META_FIELDS)",
    "inc": "hash: incident id -> the incident record, JSON (record.INCIDENT_KEYS)",
    "age": "sorted set: incident id by creation (or latest event) time, for retention",
    "seen": "sorted set: event ids applied, by event time, for duplicates",
    "h:": "h:<hour start, s>: hash of bucket counters (record.BUCKET_COUNTERS)",
    "d:": "d:<day start, s>: the same, per day",
    "all": "hash: the bucket counters over everything kept",
    "now": "hash: the gauges (record.GAUGES)",
    "hours": "sorted set: the hour buckets that exist",
    "days": "sorted set: the day buckets that exist",
    BUCKET_VERSIONS: "hash: 'h:<hour>' / 'd:<day>' -> the version of that bucket's last write"
    " (a token that never repeats), and '#', a count of writes (apply.lua)",
    DAY_VERSIONS: "hash: 'd:<day>' -> the version of the last write or deletion of any bucket"
    " of that day",
    "open:": "open:<bcu>:<grade>: sorted set of open incidents by creation time",
    "wait:": "wait:<bcu>:<grade>: open I and S incidents not yet attended",
    "att:": "att:<bcu>:<grade>: open I and S incidents attended (not yet closed)",
    "long:": "long:<bcu>: incidents whose s136 handover waited over target, by handover time",
    LATE: "hash: offsets rejected as too late, still owed a dead letter",
}


def shard(prefix: str, source: str, partition: int) -> str:
    return f"{prefix}:{{{source}:{partition}}}:"


def sources(prefix: str) -> str:
    """Every source that has state (shards), registered or not, ``unknown`` included."""
    return f"{prefix}:sources"


def registry(prefix: str) -> str:
    """The replay sources `demandmon replay` registered (a set); ``live`` is always a
    source and is never stored here. The worker applies only live and these."""
    return f"{prefix}:registry"


def partitions(prefix: str, source: str) -> str:
    return f"{prefix}:parts:{source}"


def replay(prefix: str, source: str) -> str:
    """What a replay sent under a source: lets `evaluate` tell finished from in progress."""
    return f"{prefix}:replay:{source}"


def positions(prefix: str) -> str:
    """Where each partition of the events topic has been applied through: field ``P`` is
    the last offset of partition P applied to every shard, and field ``P:source`` the
    offset that shard held then (so a shard that alone came back older is noticed)."""
    return f"{prefix}:pos"


def source_field(partition: int, source: str) -> str:
    """The ``P:source`` field of the positions and frontiers hashes."""
    return f"{partition}:{source}"


def field_shard(field: bytes | str) -> tuple[str, int] | None:
    """A ``P:source`` field as (source, partition); None for a field of another shape
    (``positions`` also holds plain ``P`` fields)."""
    text = field.decode() if isinstance(field, bytes) else field
    partition, _, source = text.partition(":")
    return (source, int(partition)) if partition.isdigit() and source else None


def frontiers(prefix: str) -> str:
    """Where in event time each partition stands, as the worker holding it published:
    field ``P:source`` is the time (ms) of the next event of that source it will apply from
    partition P (or of the last, when it holds none). Workers keep their partitions within
    reach of the others' (agents/peers.py)."""
    return f"{prefix}:frontiers"


def watermarks(prefix: str) -> str:
    """Each source's latest event time across its partitions (a sorted set, ms), which
    lateness and retention follow."""
    return f"{prefix}:watermarks"
