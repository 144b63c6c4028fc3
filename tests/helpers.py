"""Test helpers that talk to the real services: produce, scrape, query, wait."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from kafka import KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

T = TypeVar("T")

SampleKey = tuple[str, tuple[tuple[str, str], ...]]


def wait_for(probe: Callable[[], T], accept: Callable[[T], bool], timeout_s: float, what: str) -> T:
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        try:
            last = probe()
            if accept(last):
                return last
        except Exception:
            pass
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}; last: {last!r}")


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
