"""The bounded set of sources: `live` plus the replay sources registered in Redis.

`demandmon replay` registers its source before it sends anything (an atomic script that
also holds the cap), the worker applies only messages of `live` and registered sources,
the exporter exports only those, and `demandmon sources delete` removes a replay source's
registration and every key of its state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from demandmon.clients import SyncRedis
from demandmon.state import keys, lua
from demandmon.state.record import META_APPLIED, META_WATERMARK, shard_watermark
from schemas.vocabulary import LIVE_SOURCE, UNKNOWN_SOURCE

REGISTER_LUA = lua.script("register.lua")
# How often every worker reads the registry again (its periodic check), so how long after
# a deregistration no worker applies the source's messages any more.
REFRESH_EVERY_S = 5.0
SCAN_COUNT = 1000
DELETE_CHUNK = 500


@dataclass(frozen=True)
class Registration:
    status: int  # 1 registered now, 0 already registered, -1 refused: the cap is reached
    sources: int  # live plus the registered replays, after the call

    @property
    def refused(self) -> bool:
        return self.status < 0

    def refusal(self) -> str:
        """The one line a refused replay prints."""
        return (
            f"source cap reached ({self.sources} sources: live and {self.sources - 1} "
            "replays); delete one with demandmon sources delete NAME"
        )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def register(client: SyncRedis, prefix: str, name: str, max_sources: int) -> Registration:
    """Register replay source ``name`` unless that would make more than ``max_sources``
    (live included). One EVAL on ``<prefix>:registry`` alone: the replay's Redis user may
    touch nothing else. ``live`` is always a source and is never registered."""
    if name in (LIVE_SOURCE, UNKNOWN_SOURCE):
        raise ValueError(f"'{name}' is not a replay source name")
    reply = client.eval(REGISTER_LUA, 1, keys.registry(prefix), name, max_sources)
    status, count = reply
    return Registration(int(status), int(count))


def registered(client: SyncRedis, prefix: str) -> set[str]:
    """The registered replay sources (``live`` is not among them: it is never stored)."""
    return {_text(m) for m in client.smembers(keys.registry(prefix))}


@dataclass(frozen=True)
class SourceInfo:
    name: str
    kind: str  # "live", "replay", or "unregistered" (state left without a registration)
    applied: int  # events applied, all partitions
    watermark_ms: int | None  # latest event time applied (None: nothing yet)
    sent: int | None  # what the replays under this name recorded as sent (None: no record)


def list_sources(client: SyncRedis, prefix: str) -> list[SourceInfo]:
    """``live``, the registered replays, then any source holding state without being
    registered (from before registration existed, or written while it was deleted)."""
    pipe = client.pipeline(transaction=False)
    pipe.smembers(keys.registry(prefix))
    pipe.smembers(keys.sources(prefix))
    regs, with_state = pipe.execute()
    replays = sorted(_text(m) for m in regs)
    stray = sorted({_text(m) for m in with_state} - set(replays) - {LIVE_SOURCE, UNKNOWN_SOURCE})
    names = [LIVE_SOURCE, *replays, *stray]
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.smembers(keys.partitions(prefix, name))
        pipe.hget(keys.replay(prefix, name), "sent")
    replies = pipe.execute()
    parts = {n: sorted(int(_text(p)) for p in replies[2 * i]) for i, n in enumerate(names)}
    sent = {n: replies[2 * i + 1] for i, n in enumerate(names)}
    pipe = client.pipeline(transaction=False)
    for name in names:
        for p in parts[name]:
            pipe.hmget(keys.shard(prefix, name, p) + keys.META, META_APPLIED, META_WATERMARK)
    metas = iter(pipe.execute())
    out = []
    for name in names:
        applied, marks = 0, []
        for _ in parts[name]:
            count, wm = next(metas)
            applied += int(count or 0)
            if (mark := shard_watermark(wm)) is not None:
                marks.append(mark)
        kind = "replay" if name in replays else "unregistered"
        kind = LIVE_SOURCE if name == LIVE_SOURCE else kind
        raw_sent = sent[name]
        out.append(
            SourceInfo(
                name,
                kind,
                applied,
                max(marks) if marks else None,
                None if raw_sent is None else int(raw_sent),
            )
        )
    return out


def has_state(client: SyncRedis, prefix: str, name: str) -> bool:
    """Whether anything is kept under ``name`` (registered or not)."""
    pipe = client.pipeline(transaction=False)
    pipe.sismember(keys.sources(prefix), name)
    # One key per EXISTS: on a Redis Cluster the two keys are in different slots.
    pipe.exists(keys.partitions(prefix, name))
    pipe.exists(keys.replay(prefix, name))
    pipe.zscore(keys.watermarks(prefix), name)
    member, parts, replay, mark = pipe.execute()
    return bool(member) or int(parts) + int(replay) > 0 or mark is not None


def deregister(client: SyncRedis, prefix: str, name: str) -> bool:
    """Take ``name`` out of the registry (workers refuse its messages from their next
    registry read); False when it was not registered."""
    return bool(client.srem(keys.registry(prefix), name))


@dataclass
class Removed:
    partitions: list[int] = field(default_factory=list)
    shard_keys: int = 0
    keys: list[str] = field(default_factory=list)  # other keys deleted
    position_fields: int = 0
    source_entry: bool = False  # its member of <prefix>:sources
    watermark: bool = False  # its member of <prefix>:watermarks


def glob_escape(text: str) -> str:
    """``text`` as a literal inside a SCAN MATCH pattern."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _fields_of(client: SyncRedis, key: str, name: str) -> list[str]:
    """The ``P:<name>`` fields of a hash kept per partition and source."""
    return [
        _text(raw)
        for raw, _ in client.hscan_iter(key, match=f"*:{glob_escape(name)}", count=SCAN_COUNT)
        if (shard := keys.field_shard(raw)) is not None and shard[0] == name
    ]


def delete_state(client: SyncRedis, prefix: str, name: str) -> Removed:
    """Delete every key of source ``name``: its shards ``<prefix>:{name:P}:*`` for each
    partition it has (SCAN MATCH on the hash-tagged pattern, never KEYS; a cluster
    client scans every master, and its UNLINK splits the keys by slot), its partition
    set, its replay record, and its entries in the shared sources, watermarks, positions
    and frontiers keys. Run after `deregister`, so that workers stop writing them."""
    removed = Removed()
    pos_key, frontiers_key = keys.positions(prefix), keys.frontiers(prefix)
    position_fields = _fields_of(client, pos_key, name)
    parts = {int(_text(p)) for p in client.smembers(keys.partitions(prefix, name))}
    parts |= {shard[1] for f in position_fields if (shard := keys.field_shard(f))}
    removed.partitions = sorted(parts)
    for partition in removed.partitions:
        pattern = glob_escape(keys.shard(prefix, name, partition)) + "*"
        chunk: list[bytes] = []
        for key in client.scan_iter(match=pattern, count=SCAN_COUNT):
            chunk.append(key)
            if len(chunk) >= DELETE_CHUNK:
                removed.shard_keys += int(client.unlink(*chunk))
                chunk.clear()
        if chunk:
            removed.shard_keys += int(client.unlink(*chunk))
    others = [keys.partitions(prefix, name), keys.replay(prefix, name)]
    pipe = client.pipeline(transaction=False)
    for key in others:
        pipe.unlink(key)
    pipe.srem(keys.sources(prefix), name)
    pipe.zrem(keys.watermarks(prefix), name)
    if position_fields:
        pipe.hdel(pos_key, *position_fields)
    if frontier_fields := _fields_of(client, frontiers_key, name):
        pipe.hdel(frontiers_key, *frontier_fields)  # last: the replies above are counted
    replies = pipe.execute()
    removed.keys = [key for key, n in zip(others, replies, strict=False) if int(n)]
    removed.source_entry = bool(replies[len(others)])
    removed.watermark = bool(replies[len(others) + 1])
    removed.position_fields = int(replies[len(others) + 2]) if position_fields else 0
    return removed
