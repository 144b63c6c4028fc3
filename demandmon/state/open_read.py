"""Read a source's open incidents from Redis (demandmon/state/open_list.py shapes them).

Bounded and cheap: no SCAN and no KEYS. The shards are the source's partitions
(``parts:<source>``); in each shard the open incidents are the sorted sets
``open:<bcu>:<grade>`` (demandmon/state/keys.py), scored by creation time. One pipelined
round reads every set's size and the shards' watermarks, the next the first members of
each non-empty set, more rounds only while a set may still hold one of the oldest
``limit`` (open_list.more_needed), and a last one the records of the ``limit`` chosen.
Every command names one key, so the same pipelines work on a Redis Cluster (redis-py's
cluster pipeline sends each command to its key's node)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from demandmon.clients import SyncRedis
from demandmon.state import keys
from demandmon.state.open_list import (
    Member,
    OpenIncident,
    OpenList,
    SetRead,
    decode,
    first_fetch,
    more_needed,
    oldest,
)
from demandmon.state.reader import window_end
from demandmon.state.record import META_WATERMARK, shard_watermark
from schemas.vocabulary import BCU_CODES, GRADES_WITH_UNKNOWN, LIVE_SOURCE

OPEN: Final = "open:"
INC: Final = "inc"
assert OPEN in keys.SHARD_KEYS and INC in keys.SHARD_KEYS
MAX_ROUNDS: Final = 24  # each round doubles what a set is read to; limit <= 2^13


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def source_known(client: SyncRedis, prefix: str, source: str) -> bool:
    """Whether the exporter exports ``source``: ``live`` always, a replay once registered."""
    return source == LIVE_SOURCE or bool(client.sismember(keys.registry(prefix), source))


def known_sources(client: SyncRedis, prefix: str) -> list[str]:
    return [LIVE_SOURCE, *sorted(_text(m) for m in client.smembers(keys.registry(prefix)))]


def _pipeline(client: SyncRedis) -> Any:
    return client.pipeline(transaction=False)


def read_open(
    client: SyncRedis,
    prefix: str,
    source: str,
    now_s: float,
    *,
    bcu: str | None = None,
    grade: str | None = None,
    limit: int,
) -> OpenList:
    """The oldest ``limit`` open incidents of ``source`` (of one BCU and grade when
    given) as of its window end, and how many are open in all."""
    parts = sorted(int(_text(p)) for p in client.smembers(keys.partitions(prefix, source)))
    shards = [keys.shard(prefix, source, p) for p in parts]
    bcus = [bcu] if bcu is not None else list(BCU_CODES)
    grades = [grade] if grade is not None else list(GRADES_WITH_UNKNOWN)
    sets = [(base, b, g) for base in shards for b in bcus for g in grades]

    pipe = _pipeline(client)
    for base in shards:
        pipe.hget(base + keys.META, META_WATERMARK)
    for base, b, g in sets:
        pipe.zcard(f"{base}{OPEN}{b}:{g}")
    replies = pipe.execute() if shards else []
    marks = [wm for raw in replies[: len(shards)] if (wm := shard_watermark(raw)) is not None]
    # The exporter's window end: the watermark for a replay, now for live.
    mark_ms = max(marks) if marks else None
    end_s = window_end(source, now_s, None if mark_ms is None else mark_ms / 1000)
    end_ms = mark_ms if mark_ms is not None and source != LIVE_SOURCE else int(end_s * 1000)
    reads = [SetRead(int(n), []) for n in replies[len(shards) :]]
    total = sum(r.size for r in reads)

    first = first_fetch([r.size for r in reads], limit)
    wanted = {i: min(first, r.size) for i, r in enumerate(reads) if r.size > 0}
    for _ in range(MAX_ROUNDS):
        if not wanted:
            break
        _fetch(client, sets, reads, wanted)
        wanted = more_needed(reads, limit)
    chosen = oldest(reads, limit)
    incidents = _records(client, sets, reads, chosen)
    return OpenList(
        source=source,
        window_end_ms=end_ms,
        live_end=source == LIVE_SOURCE,
        total=max(total, len(incidents)),
        incidents=tuple(sorted(incidents)),
    )


def _fetch(
    client: SyncRedis,
    sets: Sequence[tuple[str, str, str]],
    reads: list[SetRead],
    wanted: dict[int, int],
) -> None:
    """Read each wanted set on from where it was left, up to its wanted count; a set that
    gives fewer than asked (it shrank meanwhile) counts as read to its end."""
    order = sorted(wanted)
    pipe = _pipeline(client)
    for i in order:
        base, b, g = sets[i]
        have = len(reads[i].members)
        pipe.zrange(f"{base}{OPEN}{b}:{g}", have, wanted[i] - 1, withscores=True)
    for i, got in zip(order, pipe.execute(), strict=True):
        r = reads[i]
        asked = wanted[i] - len(r.members)
        r.members.extend((int(score), _text(member)) for member, score in got)
        if len(got) < asked:
            r.size = len(r.members)


def _records(
    client: SyncRedis,
    sets: Sequence[tuple[str, str, str]],
    reads: Sequence[SetRead],
    chosen: Sequence[Member],
) -> list[OpenIncident]:
    """The chosen members' records, one HMGET per shard, decoded with the BCU and grade
    of the set each was found in."""
    wanted = set(chosen)
    found: dict[str, list[tuple[str, str, str]]] = {}  # shard -> (id, bcu, grade)
    for (base, b, g), r in zip(sets, reads, strict=True):
        for member in r.members:
            if member in wanted:
                found.setdefault(base, []).append((member[1], b, g))
    if not found:
        return []
    bases = sorted(found)
    pipe = _pipeline(client)
    for base in bases:
        pipe.hmget(base + INC, [iid for iid, _, _ in found[base]])
    out: list[OpenIncident] = []
    for base, raws in zip(bases, pipe.execute(), strict=True):
        for (iid, b, g), raw in zip(found[base], raws, strict=True):
            incident = decode(iid, raw, b, g)
            if incident is not None:
                out.append(incident)
    return out
