"""Read a source's figures from Redis: windows summed server-side per shard, then summed
across shards here. Stateless, so any number of exporters agree."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

import redis

from demandmon.state import keys, lua
from demandmon.state.record import (
    META_FIRST_CREATED,
    META_LAST_CREATED,
    META_LAST_WRITE,
    META_WATERMARK,
    SHARD_POSITION,
    shard_watermark,
)
from demandmon.state.windows import WINDOWS, window_buckets
from schemas.vocabulary import ATTENDANCE_TARGET_S, BCU_CODES, LIVE_SOURCE, UNKNOWN_SOURCE

READ_LUA = lua.script("read.lua")


@dataclass
class SourceFigures:
    """A source's raw counters summed across its shards: each window's bucket counters
    and the gauges (read them by name with ``record.Counts``), and the meta fields that
    add up (``record.EventCounts``); the shards' positions and times, decoded."""

    source: str
    watermark_s: float | None
    window_end_s: float
    last_processed_s: float | None
    windows: dict[str, Counter[str]] = field(default_factory=dict)
    now: Counter[str] = field(default_factory=Counter)
    meta: Counter[str] = field(default_factory=Counter)
    past_target: Counter[str] = field(default_factory=Counter)
    oldest_open_i_created_s: dict[str, float] = field(default_factory=dict)
    first_created_s: float | None = None
    last_created_s: float | None = None

    @property
    def known(self) -> bool:
        return self.watermark_s is not None


def _decode(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class StateReader:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self.script = client.register_script(READ_LUA)

    def sources(self) -> list[str]:
        return sorted(_decode(s) for s in self.client.smembers(keys.sources(self.prefix)))

    def exported_sources(self) -> list[str]:
        """The sources to export: those with state that are ``live``, registered, or the
        reserved ``unknown`` (rejections of unusable source headers). A deleted source's
        series vanish at once, even while leftovers of its state are being removed."""
        pipe = self.client.pipeline(transaction=False)
        pipe.smembers(keys.sources(self.prefix))
        pipe.smembers(keys.registry(self.prefix))
        with_state, registered = pipe.execute()
        allowed = {_decode(s) for s in registered} | {LIVE_SOURCE, UNKNOWN_SOURCE}
        return sorted(name for s in with_state if (name := _decode(s)) in allowed)

    def partitions(self, source: str) -> list[int]:
        members = self.client.smembers(keys.partitions(self.prefix, source))
        return sorted(int(_decode(p)) for p in members)

    def read(
        self, source: str, now_s: float, windows: dict[str, int] | None = None, totals: bool = True
    ) -> SourceFigures:
        shards = [keys.shard(self.prefix, source, p) for p in self.partitions(source)]
        pipe = self.client.pipeline(transaction=False)
        for base in shards:
            pipe.hmget(base + keys.META, META_WATERMARK, META_LAST_WRITE)
        marks = [(w, lw) for w, lw in pipe.execute()]
        wms = [wm for w, _ in marks if (wm := shard_watermark(w)) is not None]
        lws = [int(lw) for _, lw in marks if lw is not None]
        watermark = max(wms) / 1000 if wms else None
        # Live windows end now, so a silent feed shows falling figures; replays end at
        # their own watermark, so a replay at any speed shows the same numbers.
        end = now_s if source == LIVE_SOURCE or watermark is None else watermark
        figures = SourceFigures(
            source=source,
            watermark_s=watermark,
            window_end_s=end,
            last_processed_s=max(lws) / 1000 if lws else None,
        )
        spans = windows if windows is not None else WINDOWS
        request = {
            "windows": [
                [name, list(b.hours), list(b.days)]
                for name, hours in spans.items()
                for b in [window_buckets(end, hours)]
            ],
            "all": totals,
            "past": [
                [bcu, grade, int((end - target) * 1000)]
                for bcu in BCU_CODES
                for grade, target in ATTENDANCE_TARGET_S.items()
            ],
            "oldest": list(BCU_CODES),
        }
        arg = json.dumps(request, separators=(",", ":"))
        pipe = self.client.pipeline(transaction=False)
        for base in shards:
            self.script(keys=[base], args=[arg], client=pipe)
        for raw in pipe.execute():
            self._absorb(figures, json.loads(raw))
        return figures

    @staticmethod
    def _absorb(figures: SourceFigures, doc: dict[str, dict[str, object]]) -> None:
        for name, fields in doc["windows"].items():
            acc = figures.windows.setdefault(name, Counter())
            for f, v in fields.items():  # type: ignore[attr-defined]
                acc[f] += int(v)
        for f, v in doc["now"].items():
            figures.now[f] += int(str(v))
        for f, v in doc["meta"].items():
            if f == META_FIRST_CREATED:
                c0 = int(str(v)) / 1000
                if figures.first_created_s is None or c0 < figures.first_created_s:
                    figures.first_created_s = c0
            elif f == META_LAST_CREATED:
                c1 = int(str(v)) / 1000
                if figures.last_created_s is None or c1 > figures.last_created_s:
                    figures.last_created_s = c1
            elif f not in SHARD_POSITION:
                figures.meta[f] += int(str(v))
        for f, v in doc["past"].items():
            figures.past_target[f] += int(str(v))
        for bcu, created_ms in doc["oldest"].items():
            created = int(float(str(created_ms))) / 1000
            current = figures.oldest_open_i_created_s.get(bcu)
            if current is None or created < current:
                figures.oldest_open_i_created_s[bcu] = created
