"""Script replies handed over as they arrive: all calls go in one pipeline (one round
trip) and each reply is handled as soon as it is read, so the exporter decodes and adds
up one shard while Redis still runs the scripts of the next ones. On a Redis Cluster the
calls run one after another, as ``scripts.run_sync`` runs them."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import redis
import redis.cluster
from redis.commands.core import Script

from demandmon.clients import SyncRedis
from demandmon.state.scripts import Call, run_sync

Handle = Callable[[int, Any], None]  # (the call's index, its reply)


def each_reply(client: SyncRedis, script: Script, calls: Sequence[Call], handle: Handle) -> None:
    """``script`` once per call; ``handle(i, reply)`` for each, in order. A script error
    is raised once every reply is read (so the pooled connection stays in step), and so
    is the first error ``handle`` raised (no reply is handled after it), and replies in
    any other number than the calls (redis-py sending the pipeline again after a lost
    connection): the caller keeps nothing it was handed then."""
    if isinstance(client, redis.cluster.RedisCluster):
        for i, reply in enumerate(run_sync(client, script, calls)):
            handle(i, reply)
        return
    arrived = itertools.count()
    failed: list[Exception] = []

    def read(response: Any, **_: Any) -> None:
        # Called by redis-py for each reply that is not an error. A script error makes
        # execute() raise, so an index off by it is never kept by the caller.
        i = next(arrived)
        if not failed:
            try:
                handle(i, response)
            except Exception as exc:  # raising here would leave replies unread
                failed.append(exc)

    callbacks = {**client.response_callbacks, "EVALSHA": read}
    pipe = redis.client.Pipeline(client.connection_pool, callbacks, False, None)
    for keys, args in calls:
        script(keys=keys, args=args, client=pipe)
    pipe.execute()
    if failed:
        raise failed[0]
    handled = next(arrived)
    if handled != len(calls):  # a retried pipeline answers again: nothing may be kept
        raise redis.RedisError(f"{handled} replies to {len(calls)} script calls")
