"""Isolating an event the apply script fails on, so that it cannot stall its partition.

A Lua runtime error fails the same way on every retry. When a batch's script call fails
so, the batch is applied again shard by shard, and in a failing shard event by event:
the event that fails is counted as ``apply_error`` through the same script (under the
offset guard) and dead-lettered by the applier; the others are applied as usual.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import redis

from demandmon.state.record import Entry, entry_offset, reject_entry
from demandmon.state.store import ApplyResult, Shard, ShardResult, StateStore
from schemas.vocabulary import APPLY_ERROR

log = logging.getLogger("demandmon.worker")


def is_script_error(exc: BaseException) -> bool:
    """A Lua runtime error: the same input fails again, so retrying cannot help."""
    text = str(exc)
    return isinstance(exc, redis.ResponseError) and (
        "user_script" in text or "Error running script" in text
    )


async def apply_isolating(
    store: StateStore,
    shards: Mapping[Shard, list[Entry]],
    now_ms: int,
    shard_offsets: dict[Shard, int],
    poisoned: set[tuple[int, int]],
) -> ApplyResult:
    """Apply ``shards`` as ``StateStore.apply`` does, isolating events the script fails
    on: their (partition, offset) are added to ``poisoned``. ``shard_offsets`` (what the
    worker believes each shard holds) is kept up to date shard by shard."""
    try:
        return await store.apply(shards, now_ms, shard_offsets)
    except redis.ResponseError as exc:
        if not is_script_error(exc):
            raise
    # One event the script cannot take must not stall its partition: apply shard by
    # shard, and in a failing shard event by event, dead-lettering the one that fails.
    result = ApplyResult()
    for shard, entries in shards.items():
        result.shards[shard] = await _apply_shard(
            store, shard, entries, now_ms, shard_offsets, poisoned
        )
    return result


async def _apply_shard(
    store: StateStore,
    shard: Shard,
    entries: list[Entry],
    now_ms: int,
    shard_offsets: dict[Shard, int],
    poisoned: set[tuple[int, int]],
) -> ShardResult:
    def expect() -> dict[Shard, int]:
        return {shard: shard_offsets[shard]} if shard in shard_offsets else {}

    try:
        one = await store.apply({shard: entries}, now_ms, shard_offsets)
        return one.shards[shard]
    except redis.ResponseError as exc:
        if not is_script_error(exc):
            raise
    merged = ShardResult(offset_before=shard_offsets.get(shard, -1))
    for entry in entries:
        try:
            part = await store.apply({shard: [entry]}, now_ms, expect())
        except redis.ResponseError as exc:
            if not is_script_error(exc):
                raise
            log.error("an event made the apply script fail; dead-lettering it")
            offset = entry_offset(entry)
            part = await store.apply({shard: [reject_entry(offset, APPLY_ERROR)]}, now_ms, expect())
            poisoned.add((shard[1], offset))
        r = part.shards[shard]
        if r.behind:
            return r
        shard_offsets[shard] = r.offset_after
        _merge(merged, r)
    return merged


def _merge(into: ShardResult, part: ShardResult) -> None:
    into.offset_after = part.offset_after
    into.applied += part.applied
    into.duplicate += part.duplicate
    into.skipped += part.skipped
    into.orphaned += part.orphaned
    into.late.extend(part.late)
    into.rejected.update(part.rejected)
