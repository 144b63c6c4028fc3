"""Running a Lua script once per shard, on one Redis or on a Redis Cluster.

On one Redis the calls go in one pipeline (one round trip) with whatever else the caller
queued. redis-py's cluster pipelines refuse EVALSHA (sync and asyncio alike), so on a
cluster: the asyncio client runs the pipeline and every call concurrently, the blocking
client one call after another. Each call's keys share a hash tag (demandmon.state.keys),
so each call touches one slot, which the cluster client routes it to.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from redis.commands.core import AsyncScript, Script

from demandmon.clients import AsyncRedis, SyncRedis

# One script call: its keys (of one hash slot) and its arguments.
Call = tuple[Sequence[str], Sequence[Any]]


async def execute_async(
    client: AsyncRedis,
    pipe: redis.asyncio.client.Pipeline | redis.asyncio.cluster.ClusterPipeline,
    script: AsyncScript,
    calls: Sequence[Call],
) -> tuple[list[Any], list[Any]]:
    """Run what ``pipe`` (a non-transactional pipeline of ``client``) holds, and
    ``script`` once per call: (the pipeline's replies, the calls' replies, in order).
    On a cluster every call has run (or failed) before the first error is raised."""
    if not isinstance(client, redis.asyncio.cluster.RedisCluster):
        queued = len(pipe)
        for keys, args in calls:
            await script(keys=keys, args=args, client=pipe)  # type: ignore[arg-type]
        replies = await pipe.execute()
        return replies[:queued], replies[queued:]
    outcomes = await asyncio.gather(
        pipe.execute(),
        *(script(keys=keys, args=args) for keys, args in calls),
        return_exceptions=True,
    )
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return list(outcomes[0]), list(outcomes[1:])


def run_sync(client: SyncRedis, script: Script, calls: Sequence[Call]) -> list[Any]:
    """``script`` once per call, the replies in order: in one pipeline on one Redis; one
    call after another through a cluster client, which routes each to its node and
    follows redirections (measured on the local 3-node cluster, a read of 12 shards took
    the same time as one pipeline per node: the scripts' own work dominates)."""
    if isinstance(client, redis.cluster.RedisCluster):
        return [script(keys=keys, args=args) for keys, args in calls]
    pipe = client.pipeline(transaction=False)
    for keys, args in calls:
        script(keys=keys, args=args, client=pipe)
    return list(pipe.execute())
