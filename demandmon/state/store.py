"""Apply planned batches to Redis: one script call per shard, all shards of a batch in one
pipelined round trip. Sync and async clients share the same script and arguments."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import redis.asyncio

from agents.batch import Entry, Plan
from demandmon.settings import LIVE_SOURCE
from demandmon.state import keys

APPLY_LUA = Path(__file__).with_name("apply.lua").read_text()
PRUNE_LIMIT = 2000


@dataclass
class ApplyResult:
    applied: int = 0
    duplicate: int = 0
    skipped: int = 0
    orphaned: int = 0
    rejected: Counter[str] = field(default_factory=Counter)

    def absorb(self, reply: list[Any]) -> None:
        self.applied += int(reply[0])
        self.duplicate += int(reply[1])
        self.skipped += int(reply[2])
        self.orphaned += int(reply[3])
        for i in range(4, len(reply), 2):
            reason = reply[i].decode() if isinstance(reply[i], bytes) else str(reply[i])
            self.rejected[reason] += int(reply[i + 1])


@dataclass(frozen=True)
class StoreConfig:
    prefix: str
    retention_s: int
    max_future_s: int


def script_args(config: StoreConfig, source: str, entries: list[Entry], now_ms: int) -> list[Any]:
    future = config.max_future_s * 1000 if source == LIVE_SOURCE else -1
    batch = json.dumps(entries, separators=(",", ":"))
    return [now_ms, config.retention_s * 1000, future, batch, PRUNE_LIMIT]


class StateStore:
    """Writes through an asyncio Redis client (the worker)."""

    def __init__(self, client: redis.asyncio.Redis, config: StoreConfig) -> None:
        self.client = client
        self.config = config
        self.script = client.register_script(APPLY_LUA)
        self._registered: set[tuple[str, int]] = set()

    async def apply(self, plan: Plan, now_ms: int) -> ApplyResult:
        result = ApplyResult()
        if not plan.shards:
            return result
        pipe = self.client.pipeline(transaction=False)
        new = [shard for shard in plan.shards if shard not in self._registered]
        for source, partition in new:
            pipe.sadd(keys.sources(self.config.prefix), source)
            pipe.sadd(keys.partitions(self.config.prefix, source), partition)
        for (source, partition), entries in plan.shards.items():
            base = keys.shard(self.config.prefix, source, partition)
            args = script_args(self.config, source, entries, now_ms)
            await self.script(keys=[base], args=args, client=pipe)
        replies = await pipe.execute()
        for reply in replies[2 * len(new) :]:
            result.absorb(reply)
        self._registered.update(new)
        return result


class SyncStateStore:
    """The same writes through a blocking client (tests, tools)."""

    def __init__(self, client: redis.Redis, config: StoreConfig) -> None:
        self.client = client
        self.config = config
        self.script = client.register_script(APPLY_LUA)

    def apply(self, plan: Plan, now_ms: int) -> ApplyResult:
        result = ApplyResult()
        for (source, partition), entries in plan.shards.items():
            self.client.sadd(keys.sources(self.config.prefix), source)
            self.client.sadd(keys.partitions(self.config.prefix, source), partition)
            base = keys.shard(self.config.prefix, source, partition)
            args = script_args(self.config, source, entries, now_ms)
            result.absorb(self.script(keys=[base], args=args))
        return result
