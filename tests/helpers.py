"""Test helpers that talk to the real services: produce, scrape, query, wait."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import redis
from kafka import KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from demandmon.exporter.families import BASELINE_METRICS
from demandmon.state.registry import register

T = TypeVar("T")

SampleKey = tuple[str, tuple[tuple[str, str], ...]]


def wait_for(
    probe: Callable[[], T],
    accept: Callable[[T], bool],
    timeout_s: float,
    what: str,
    interval_s: float = 0.5,
) -> T:
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        try:
            last = probe()
            if accept(last):
                return last
        except Exception:
            pass
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}; last: {last!r}")


def register_source(redis_url: str, prefix: str, name: str, max_sources: int = 20) -> None:
    """Register a replay source as `demandmon replay` does (the same script), for tests
    that produce with a source header themselves: the worker refuses unregistered ones."""
    done = register(redis.Redis.from_url(redis_url), prefix, name, max_sources)
    assert not done.refused, done.refusal()


def produce(
    bootstrap: str,
    topic: str,
    messages: Iterable[tuple[bytes | None, bytes]],
    headers: list[tuple[str, bytes]] | None = None,
) -> int:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=10)
    count = 0
    for key, value in messages:
        producer.send(topic, key=key, value=value, headers=headers or [])
        count += 1
    producer.flush()
    producer.close()
    return count


def event_messages(events: Iterable[dict[str, Any]]) -> list[tuple[bytes | None, bytes]]:
    return [(str(e["incident_id"]).encode(), json.dumps(e).encode()) for e in events]


def scrape(url: str) -> dict[SampleKey, float]:
    with urllib.request.urlopen(url, timeout=30) as response:
        text = response.read().decode()
    samples: dict[SampleKey, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = float(s.value)
    return samples


def prom_query(base_url: str, expr: str) -> list[dict[str, Any]]:
    url = f"{base_url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as response:
        doc = json.loads(response.read())
    assert doc["status"] == "success", doc
    result: list[dict[str, Any]] = doc["data"]["result"]
    return result


def prom_scalar(base_url: str, expr: str) -> float | None:
    result = prom_query(base_url, expr)
    if not result:
        return None
    return float(result[0]["value"][1])


def nonzero(samples: dict[SampleKey, float], names: Iterable[str]) -> dict[SampleKey, float]:
    wanted = set(names)
    return {k: round(v, 6) for k, v in samples.items() if k[0] in wanted and v != 0}


# Figures that follow the wall clock, so no recount can predict them; and expected demand,
# which the oracle does not recount (tests/integration/test_baseline_e2e.py checks it).
WALL_CLOCK_METRICS = frozenset(
    {
        "demand_stream_window_end_timestamp_seconds",
        "demand_stream_last_processed_timestamp_seconds",
        *BASELINE_METRICS,
    }
)


def source_figures(
    samples: dict[SampleKey, float], source: str, skip: Iterable[str] = WALL_CLOCK_METRICS
) -> dict[SampleKey, float]:
    """The non-zero samples of one ``source``, rounded, without ``skip``: the shape
    ``Oracle.samples`` returns, so the two compare with ``==``."""
    skipped = set(skip)
    return {
        k: round(v, 6)
        for k, v in samples.items()
        if ("source", source) in k[1] and v != 0 and k[0] not in skipped
    }


def figures_diff(got: dict[SampleKey, float], want: dict[SampleKey, float], limit: int = 12) -> str:
    """A short account of how two sets of samples differ (for assertion messages)."""
    keys = sorted(set(got) | set(want))
    lines = [
        f"  {name}{dict(labels)}: got {got.get((name, labels))}, want {want.get((name, labels))}"
        for name, labels in keys
        if got.get((name, labels)) != want.get((name, labels))
    ]
    more = f"\n  ... and {len(lines) - limit} more" if len(lines) > limit else ""
    return f"{len(lines)} samples differ:\n" + "\n".join(lines[:limit]) + more


Record = tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]


def send_records(bootstrap: str, topic: str, records: Iterable[Record]) -> list[tuple[int, int]]:
    """Produce (key, value, headers) records in order; returns each one's (partition,
    offset), so what the worker does with it can be matched to it."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_request_size=2 * 1024 * 1024
    )
    futures = [producer.send(topic, key=k, value=v, headers=h) for k, v, h in records]
    producer.flush()
    placed = []
    for future in futures:
        meta = future.get(timeout=30)
        placed.append((int(meta.partition), int(meta.offset)))
    producer.close()
    return placed


def key_for_partition(stem: str, partition: int, partitions: int) -> str:
    """An id starting with ``stem`` that the producer's default partitioner (murmur2, as in
    the Java client) puts on ``partition``."""
    from kafka.partitioner.default import murmur2

    for n in range(100_000):
        candidate = f"{stem}{n}"
        if (murmur2(candidate.encode()) & 0x7FFFFFFF) % partitions == partition:
            return candidate
    raise AssertionError(f"no key for partition {partition}")


def read_topic(
    bootstrap: str,
    topic: str,
    enough: Callable[[list[Any]], bool],
    timeout_s: float,
) -> list[Any]:
    """Every record of ``topic`` from the start, read until ``enough(records)`` or the
    timeout (then whatever was read; the caller says what is missing)."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=500,
        fetch_max_bytes=8 * 1024 * 1024,
    )
    records: list[Any] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and not enough(records):
            records.extend(consumer)  # stops after 0.5 s without a record
    finally:
        consumer.close()
    return records


def metric(url: str, name: str, **labels: str) -> float | None:
    """One sample from a /metrics page (None when absent or the page does not answer)."""
    try:
        samples = scrape(url)
    except Exception:
        return None
    return samples.get((name, tuple(sorted(labels.items()))))
