"""agents/metrics.py: a batch's latencies observed at once equal one observe per event."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram

from agents.metrics import LATENCY_BUCKETS, observe_all


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for metric in registry.collect()
        for s in metric.samples
        if not s.name.endswith("_created")
    }


def test_observing_a_batch_at_once_equals_observing_each() -> None:
    amounts = [-3.0, 0.0, 0.01, 0.0100001, 0.3, 1, 2.5, 59.9, 60, 61, 1e9, *LATENCY_BUCKETS]
    one_by_one, at_once = CollectorRegistry(), CollectorRegistry()
    each = Histogram("lat", "l", ["kind"], buckets=LATENCY_BUCKETS, registry=one_by_one)
    batch = Histogram("lat", "l", ["kind"], buckets=LATENCY_BUCKETS, registry=at_once)
    for a in amounts:
        each.labels("live").observe(max(0.0, a))
    observe_all(batch.labels("live"), amounts)
    observe_all(batch.labels("replay"), [])
    each.labels("replay")
    assert samples(at_once) == samples(one_by_one)
    assert samples(at_once)[("lat_count", (("kind", "live"),))] == len(amounts)
