"""The worker's own metrics, on an injected registry, served at /metrics on its web port."""

from __future__ import annotations

import contextlib
import time
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from agents.batch import Consumed, Plan
from demandmon.state.store import ApplyResult
from schemas.vocabulary import APPLY_ERROR, SOURCE_HEADER

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


@dataclass(frozen=True)
class WorkerMetrics:
    registry: CollectorRegistry
    messages: Counter
    batches: Counter
    applied: Counter
    duplicates: Counter
    skipped: Counter
    deadlettered: Counter
    apply_failures: Counter
    latency: Histogram
    deadletter_failures: Counter
    rewinds: Counter
    last_apply: Gauge
    lag: Gauge
    applied_offset: Gauge
    end_offset: Gauge
    registered_sources: Gauge

    def count_batch(
        self, messages: Sequence[Consumed], plan: Plan, result: ApplyResult, poisoned: int
    ) -> None:
        """A batch is applied: ``poisoned`` events of it failed the apply script."""
        done = time.time()
        self.messages.inc(len(messages))
        self.batches.inc()
        self.applied.inc(result.applied)
        self.duplicates.inc(result.duplicate)
        self.skipped.inc(result.skipped)
        self.last_apply.set(done)
        for rejection in plan.rejections:
            self.deadlettered.labels(rejection.reason).inc()
        for _ in range(poisoned):
            self.deadlettered.labels(APPLY_ERROR).inc()
        # Per message, so kept cheap: "replay" is any message with a source header (one
        # with a bad header was dead-lettered anyway), and each child takes its batch's
        # latencies at once.
        latencies: dict[bool, list[float]] = {False: [], True: []}
        for msg in messages:
            if msg.timestamp_ms is not None:
                replayed = any(name == SOURCE_HEADER for name, _ in msg.headers)
                latencies[replayed].append(done - msg.timestamp_ms / 1000)
        observe_all(self.latency.labels("live"), latencies[False])
        observe_all(self.latency.labels("replay"), latencies[True])

    def forget_partition(self, partition: int) -> None:
        """A revoked partition is another worker's to report."""
        for gauge in (self.lag, self.applied_offset, self.end_offset):
            with contextlib.suppress(KeyError):
                gauge.remove(str(partition))

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> WorkerMetrics:
        reg = registry or CollectorRegistry()
        return cls(
            registry=reg,
            messages=Counter(
                "demand_worker_messages", "Messages consumed from Kafka", registry=reg
            ),
            batches=Counter("demand_worker_batches", "Batches applied to Redis", registry=reg),
            applied=Counter("demand_worker_events_applied", "Events applied", registry=reg),
            duplicates=Counter(
                "demand_worker_events_duplicate", "Duplicate events ignored", registry=reg
            ),
            skipped=Counter(
                "demand_worker_messages_redelivered",
                "Messages already applied (offset guard), e.g. after a crash",
                registry=reg,
            ),
            deadlettered=Counter(
                "demand_worker_deadlettered",
                "Messages sent to the dead-letter topic",
                ["reason"],
                registry=reg,
            ),
            apply_failures=Counter(
                "demand_worker_apply_failures",
                "Batch applications that failed and were retried",
                registry=reg,
            ),
            latency=Histogram(
                "demand_worker_event_latency_seconds",
                "Wall time from the Kafka message timestamp to the state change",
                ["source_kind"],
                buckets=LATENCY_BUCKETS,
                registry=reg,
            ),
            deadletter_failures=Counter(
                "demand_worker_deadletter_failures",
                "Dead letters given up after the retry deadline (counted, record lost)",
                ["reason"],
                registry=reg,
            ),
            rewinds=Counter(
                "demand_worker_rewinds",
                "Partitions rewound because Redis held older state than was applied",
                registry=reg,
            ),
            last_apply=Gauge(
                "demand_worker_last_apply_timestamp_seconds",
                "Wall-clock time of the last batch applied to Redis",
                registry=reg,
            ),
            lag=Gauge(
                "demand_worker_partition_lag",
                "Messages in the partition not yet applied (end offset - next to apply)",
                ["partition"],
                registry=reg,
            ),
            applied_offset=Gauge(
                "demand_worker_partition_applied_offset",
                "Last offset of the partition applied to Redis (-1: none)",
                ["partition"],
                registry=reg,
            ),
            end_offset=Gauge(
                "demand_worker_partition_end_offset",
                "End offset of the partition (the next offset to be written)",
                ["partition"],
                registry=reg,
            ),
            registered_sources=Gauge(
                "demand_worker_registered_sources",
                "Replay sources registered, as the worker last read the registry",
                registry=reg,
            ),
        )


def observe_all(histogram: Histogram, amounts: Sequence[float]) -> None:
    """``histogram.observe(max(0, a))`` for every amount, in one go: bucket counts and the
    sum are added once per batch (a per-event observe cost 2 us of the worker's ~20). Reaches
    into prometheus_client's histogram child (``_upper_bounds``, ``_buckets``, ``_sum``,
    non-cumulative buckets); tests/unit/test_worker_metrics.py checks it against observe."""
    if not amounts:
        return
    bounds = histogram._upper_bounds
    counts = [0] * len(bounds)
    total = 0.0
    for amount in amounts:
        amount = max(0.0, amount)
        total += amount
        counts[bisect_left(bounds, amount)] += 1
    histogram._sum.inc(total)
    for bucket, n in zip(histogram._buckets, counts, strict=True):
        if n:
            bucket.inc(n)
