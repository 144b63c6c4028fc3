"""The stream's state in scratch Redis keys: the worker's apply script writes it, the
exporter's reader reads it, and all of it is deleted at the end.

One source, one partition (one shard), under a key prefix of its own beginning with the
configured one (``<prefix>_bf<random>``): on a secure stack the admin user's keys
(``~<prefix>*``) cover it, and nothing the exporter, `sources` or the worker read sees it.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Mapping
from typing import Any

from demandmon.clients import SyncRedis
from demandmon.state import keys
from demandmon.state.reader import SourceFigures, StateReader, read_request
from demandmon.state.record import Entry
from demandmon.state.registry import delete_state
from demandmon.state.store import APPLY_LUA, ShardResult, StoreConfig, script_args
from demandmon.state.windows import WINDOWS

PARTITION = 0


def scratch_prefix(prefix: str) -> str:
    return f"{prefix}_bf{secrets.token_hex(4)}"


class ScratchState:
    def __init__(self, client: SyncRedis, prefix: str, source: str, retention_s: int) -> None:
        self.client = client
        self.prefix = prefix
        self.source = source
        self.config = StoreConfig(prefix, retention_s)
        self.base = keys.shard(prefix, source, PARTITION)
        self.script = client.register_script(APPLY_LUA)
        self.reader = StateReader(client, prefix)
        self.watermark_ms = -1  # the source's (this one shard's) latest event time

    def apply(self, entries: list[Entry], now_ms: int) -> ShardResult:
        """One batch through apply.lua, as the worker applies a shard's entries.
        ``now_ms`` is what the script records as the time of the write."""
        if self.watermark_ms < 0:  # registered as the worker registers a shard
            self.client.sadd(keys.sources(self.prefix), self.source)
            self.client.sadd(keys.partitions(self.prefix, self.source), PARTITION)
        args = script_args(self.config, entries, now_ms, source_watermark=self.watermark_ms)
        result = ShardResult.from_reply(self.script(keys=[self.base], args=args))
        self.watermark_ms = max(self.watermark_ms, result.watermark)
        return result

    def figures(self, windows: Mapping[str, int] | None) -> SourceFigures:
        """The source's figures at its watermark, as the exporter reads a replay source
        (windows end at the watermark): everything (``StateReader.read``) when
        ``windows`` is None, else only those windows, the whole-stream totals (``all``)
        and the gauges, in one script call."""
        end_s = self.watermark_ms / 1000
        if windows is None:
            return self.reader.read(self.source, end_s, dict(WINDOWS))
        arg = read_request(windows_end_s=end_s, windows=windows, totals=True, gauges=True)
        (doc,) = self.reader.read_shards([(self.base, arg)])
        return _figures(self.source, end_s, doc)

    def delete(self) -> None:
        """Every key this state wrote (``sources delete``'s own sweep)."""
        delete_state(self.client, self.prefix, self.source)


def _figures(source: str, end_s: float, doc: dict[str, Any]) -> SourceFigures:
    figures = SourceFigures(source, watermark_s=end_s, window_end_s=end_s, last_processed_s=None)
    for name, fields in doc["windows"].items():
        figures.windows[name] = Counter({f: int(str(v)) for f, v in fields.items()})
    figures.now.update({f: int(str(v)) for f, v in doc.get("now", {}).items()})
    return figures
