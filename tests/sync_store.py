"""The worker's apply script through a blocking client, for tests that drive Redis
directly (property tests, too-late cases). Same script, same arguments, same reply
decoding as the worker's StateStore; only the transport differs."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from agents.batch import Plan
from demandmon.clients import SyncRedis
from demandmon.state import keys
from demandmon.state.record import Entry
from demandmon.state.store import APPLY_LUA, ShardResult, StoreConfig, script_args


@dataclass
class SyncResult:
    applied: int = 0
    duplicate: int = 0
    skipped: int = 0
    late: list[int] = field(default_factory=list)
    rejected: Counter[str] = field(default_factory=Counter)


class SyncStateStore:
    def __init__(self, client: SyncRedis, config: StoreConfig) -> None:
        """``client``: of one Redis or of a Redis Cluster (every call touches one key, or
        one shard's keys, which share a hash slot)."""
        self.client = client
        self.config = config
        self.script = client.register_script(APPLY_LUA)

    def apply(self, plan: Plan, now_ms: int) -> SyncResult:
        out = SyncResult()
        marks = keys.watermarks(self.config.prefix)
        for (source, partition), entries in plan.shards.items():
            self.client.sadd(keys.sources(self.config.prefix), source)
            self.client.sadd(keys.partitions(self.config.prefix, source), partition)
            r = self._run(source, partition, entries, now_ms)
            out.applied += r.applied
            out.duplicate += r.duplicate
            out.skipped += r.skipped
            out.late.extend(r.late)
            out.rejected.update(r.rejected)
            if r.horizon_watermark >= 0:
                self.client.zadd(marks, {source: r.horizon_watermark}, gt=True)
            # As the worker does: the source's other shards prune up to its watermark.
            for other in self.client.smembers(keys.partitions(self.config.prefix, source)):
                if int(other) != partition:
                    self._run(source, int(other), [], now_ms)
        return out

    def _run(self, source: str, partition: int, entries: list[Entry], now_ms: int) -> ShardResult:
        base = keys.shard(self.config.prefix, source, partition)
        recorded = self.client.zscore(keys.watermarks(self.config.prefix), source)
        watermark = -1 if recorded is None else int(recorded)
        args = script_args(self.config, entries, now_ms, source_watermark=watermark)
        return ShardResult.from_reply(self.script(keys=[base], args=args))
