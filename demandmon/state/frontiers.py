"""Where each partition stands in event time, shared by the workers of a group (the
``frontiers`` hash, keys.frontiers): a worker publishes it for the partitions it holds,
and reads the others' with how far Redis says they are applied (agents/peers.py)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from demandmon.clients import AsyncRedis
from demandmon.state import keys

Shard = tuple[str, int]  # (source, partition)


async def publish(client: AsyncRedis, prefix: str, frontiers: Mapping[Shard, int]) -> None:
    if frontiers:
        mapping = {keys.source_field(p, source): t for (source, p), t in frontiers.items()}
        await client.hset(keys.frontiers(prefix), mapping=mapping)  # type: ignore[arg-type]


async def forget(client: AsyncRedis, prefix: str, partitions: Collection[int]) -> None:
    """These partitions changed hands (or were sought): what was published of them is no
    longer where they are."""
    key = keys.frontiers(prefix)
    names = await client.hkeys(key)
    gone = [
        n for n in names if (shard := keys.field_shard(n)) is not None and shard[1] in partitions
    ]
    if gone:
        await client.hdel(key, *gone)


async def read(
    client: AsyncRedis, prefix: str, partitions: Collection[int]
) -> tuple[dict[int, int], dict[Shard, int]]:
    """The last offset applied of each of these partitions (-1: none) and the frontiers
    published of them."""
    parts = sorted(partitions)
    pipe = client.pipeline(transaction=False)
    pipe.hmget(keys.positions(prefix), [str(p) for p in parts])
    pipe.hgetall(keys.frontiers(prefix))
    applied, published = await pipe.execute()
    positions = {p: -1 if raw is None else int(raw) for p, raw in zip(parts, applied, strict=True)}
    return positions, parse(published, positions)


def parse(published: Mapping[Any, Any], partitions: Collection[int]) -> dict[Shard, int]:
    """The hash's fields of these partitions; a field or value of another shape is left
    out (nothing but workers write it, but a bad entry must not stop one)."""
    frontiers: dict[Shard, int] = {}
    for field, value in published.items():
        shard = keys.field_shard(field)
        text = (
            value.decode() if isinstance(value, bytes) else value if isinstance(value, str) else ""
        )
        if shard is not None and shard[1] in partitions and text.isascii() and text.isdigit():
            frontiers[shard] = int(text)
    return frontiers
