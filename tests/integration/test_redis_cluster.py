"""The exactness tests against a Redis Cluster of three masters (`demandmon stack up
--redis-cluster`, the session fixture ``cluster_stack``), through redis-py's cluster
clients (DEMANDMON_REDIS_CLUSTER=true in the stack's endpoints). The tests' own bodies
run here, imported from their modules; only the fixtures ``pipeline`` and ``client``
below point them at the cluster.

Which run here (a documented subset), and why that covers every script path:

- apply.lua, through the worker's asyncio cluster client (one concurrent call per shard,
  demandmon.state.scripts): the messy stream with a worker kill -9 and two workers
  after it; Redis (the node DEMANDMON_REDIS_URL names: one master of three, so some
  shards fail and others apply within one batch) killed -9 and restarted from its AOF;
  Kafka restarted. Through the blocking cluster client: the property tests (random
  messy streams, batching, partitions, redelivery; lateness across partitions) and the
  too-late and too-far-future cases of test_state_properties.py.
- the empty batch that only prunes: the lateness property test (SyncStateStore prunes
  a source's other shards after each message), and StateStore.prune below.
- the position and rollback check (ARGV[3], the ``{-1, offset held}`` reply that makes
  the worker rewind), with resume and the positions: test_worker_store_on_the_cluster,
  deterministically (the Redis-killed test may or may not find a shard behind).
- read.lua: every figure compared, read by the exporter's StateReader (blocking cluster
  client, one call per shard) or by the property tests; `evaluate`'s whole-stream read
  and its progress check (the briefing's tables through the pipeline).
- register.lua: every replay registers its source.
- SCAN over every master and UNLINK split by slot (`sources delete`), EXISTS one key at
  a time (`has_state`): test_sources_list_and_delete.

Time on the 2-core development box: the cluster stack (Kafka, three Redis masters,
Prometheus, Alertmanager) starts in about 14 s and the whole module runs in about 3.5
minutes, the property tests with 100 examples each (about 17 s apiece).

Left to the single Redis: the restore of an older AOF copy (test_faults.py; a cluster
would need a copy per node, and the rollback check it proves is covered above), the
hostile-input and alerting tests (no Redis path of their own), the secure stack
(`--redis-cluster` is refused with `--secure`).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio.cluster
import redis.cluster
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.batch import plan_batch
from demandmon.state import keys
from demandmon.state.reader import StateReader
from demandmon.state.record import Entry
from demandmon.state.store import UNKNOWN_OFFSET, Shard, StateStore, StoreConfig
from streams.generate import generate_stream
from tests.conftest import Pipeline, Stack, pipeline_on
from tests.integration import test_state_properties as props
from tests.integration.test_evaluate_e2e import test_briefing_tables_reproduced_through_the_pipeline
from tests.integration.test_pipeline_exact import (
    test_kafka_restarted_mid_stream_loses_and_doubles_nothing,
    test_messy_stream_with_worker_crash_equals_oracle,
    test_redis_killed_mid_stream_loses_and_doubles_nothing,
)
from tests.integration.test_sources import test_sources_list_and_delete
from tests.integration.test_state_properties import (
    test_events_far_in_the_future_are_rejected_and_counted,
    test_too_late_events_are_rejected_and_counted,
)

pytestmark = pytest.mark.integration

# Run here under these names, against the cluster.
__all__ = [
    "test_briefing_tables_reproduced_through_the_pipeline",
    "test_events_far_in_the_future_are_rejected_and_counted",
    "test_kafka_restarted_mid_stream_loses_and_doubles_nothing",
    "test_messy_stream_with_worker_crash_equals_oracle",
    "test_redis_killed_mid_stream_loses_and_doubles_nothing",
    "test_sources_list_and_delete",
    "test_too_late_events_are_rejected_and_counted",
]

# Fewer examples than on the single Redis: the same script, another transport.
EXAMPLES = 100
HORIZON_S = 35 * 86400


@pytest.fixture
def pipeline(cluster_stack: Stack, tmp_path: Path) -> Iterator[Pipeline]:
    yield from pipeline_on(cluster_stack, tmp_path)


@pytest.fixture(scope="module")
def client(cluster_stack: Stack) -> Iterator[redis.cluster.RedisCluster]:
    cluster = redis.cluster.RedisCluster.from_url(cluster_stack.redis_url)
    yield cluster
    cluster.close()


def _body(test: Callable[..., None]) -> Callable[..., None]:
    """A property test's own body, without its @given and @settings (Hypothesis keeps
    it as ``.hypothesis.inner_test``), to run it with this module's examples."""
    body: Callable[..., None] = test.hypothesis.inner_test  # type: ignore[attr-defined]
    return body


# The property tests, each drawing from the same strategies as on the single Redis.
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=props.messy_stream(),
    partitions=st.integers(1, 4),
    batch=st.integers(1, 20),
    replays=st.integers(1, 2),
)
def test_messy_streams_equal_the_oracle(
    client: redis.cluster.RedisCluster,
    events: list[dict[str, Any]],
    partitions: int,
    batch: int,
    replays: int,
) -> None:
    body = _body(props.test_messy_streams_equal_the_oracle)
    body(client, events, partitions, batch, replays)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=props.spread_stream(), partitions=st.integers(2, 4))
def test_lateness_follows_the_sources_watermark_across_partitions(
    client: redis.cluster.RedisCluster, events: list[dict[str, Any]], partitions: int
) -> None:
    body = _body(props.test_lateness_follows_the_sources_watermark_across_partitions)
    body(client, events, partitions)


def test_worker_store_on_the_cluster(
    cluster_stack: Stack, client: redis.cluster.RedisCluster
) -> None:
    """The worker's StateStore through the asyncio cluster client, path by path: a batch
    over shards on several masters, a redelivery the offset guard skips, the positions
    and where a newly assigned partition resumes, a shard found holding less than the
    worker expects (Redis came back older: nothing applied, the worker is told), and
    empty batches that only prune."""
    prefix, url = f"c{uuid.uuid4().hex[:10]}", cluster_stack.redis_url
    events, _ = generate_stream("sample", seed=8, duplicates=0.05, shuffle=True)
    messages = props._messages(events, 12)
    plan = plan_batch(
        messages, props.MAPPING, 65536, props.PLAN_NOW_MS, props.FUTURE_MS, {props.SOURCE}
    )
    masters = {
        client.get_node_from_key(keys.shard(prefix, *shard)).name  # type: ignore[no-untyped-call]
        for shard in plan.shards
    }
    assert len(masters) >= 2, "every shard landed on one master: nothing tested"
    try:
        asyncio.run(_store_paths(_store(url, prefix), plan.shards, len(messages)))
        assert props._pipeline_samples(client, prefix) == props._oracle_samples(events)
        # An empty batch after the source's watermark moved 100 days on: every incident
        # leaves every shard, the whole-stream totals stay.
        before = StateReader(client, prefix).read(props.SOURCE, now_s=0)
        asyncio.run(_prune_far_ahead(_store(url, prefix), plan.shards))
        after = StateReader(client, prefix).read(props.SOURCE, now_s=0)
        assert sum(before.now.values()) > 0 and not any(after.now.values())
        assert after.windows["all"] == before.windows["all"]
    finally:
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)


def _store(url: str, prefix: str) -> StateStore:
    cluster = redis.asyncio.cluster.RedisCluster.from_url(url)
    return StateStore(cluster, StoreConfig(prefix, HORIZON_S))


async def _store_paths(store: StateStore, shards: Mapping[Shard, list[Entry]], n: int) -> None:
    try:
        first = await store.apply(shards, 0, {})
        assert first.applied + first.duplicate + first.skipped == n and first.skipped == 0
        held = {shard: r.offset_after for shard, r in first.shards.items()}
        watermark = max(r.watermark for r in first.shards.values())
        await store.save_positions(
            {p: (offset, {source: offset}) for (source, p), offset in held.items()},
            {props.SOURCE: watermark},
        )
        for (source, p), offset in held.items():
            resume = await store.resume(p)
            assert (resume.offset, resume.shard_offsets) == (offset + 1, {source: offset})
        parts, shard_offsets = await store.positions_held([p for _, p in held], held)
        assert shard_offsets == held and parts == {p: o for (_, p), o in held.items()}

        again = await store.apply(shards, 0, held)
        assert (again.skipped, again.applied, again.behind()) == (n, 0, set())

        shard = next(iter(held))
        behind = await store.apply({shard: shards[shard]}, 0, {shard: held[shard] + 1})
        assert behind.behind() == {shard[1]}
        assert behind.shards[shard].offset_before == held[shard]

        pruned = await store.prune(held, {props.SOURCE: watermark}, 0)
        assert {s: r.offset_after for s, r in pruned.items()} == held
        assert not any(r.behind for r in pruned.values())
    finally:
        await store.client.aclose()


async def _prune_far_ahead(store: StateStore, shards: Mapping[Shard, list[Entry]]) -> None:
    try:
        marks = await store.source_watermarks([props.SOURCE])
        ahead = {props.SOURCE: marks[props.SOURCE] + 100 * 86400 * 1000}
        pruned = await store.prune(dict.fromkeys(shards, UNKNOWN_OFFSET), ahead, 0)
        assert not any(r.behind for r in pruned.values())
    finally:
        await store.client.aclose()
