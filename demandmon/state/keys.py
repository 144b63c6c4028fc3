"""Redis key layout. Every key of one (source, partition) shard shares a hash tag, so one
batch touches one Redis Cluster slot. Keys hold only allow-listed values (prefix, source
name, partition number, BCU, grade, bucket start); incident and event ids live inside
hashes and sorted sets, never in key names."""

from __future__ import annotations


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


def watermarks(prefix: str) -> str:
    """Each source's latest event time across its partitions (a sorted set, ms), which
    lateness and retention follow."""
    return f"{prefix}:watermarks"
