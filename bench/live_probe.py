"""The live benchmark's parts: a paced feed of incident lifecycles stamped at send time,
and two observers polling from threads: the worker's positions in Redis and the raw
samples of one series in Prometheus. bench/live.py runs them and reads the figures."""

from __future__ import annotations

import heapq
import json
import math
import re
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Any

import confluent_kafka
import redis
from events import EVENTS_PER_INCIDENT, incident_life

from demandmon.state import keys
from schemas.vocabulary import SOURCE_HEADER

# A real incident's life (hours, in bench/events.py) passes in minutes here, so the open
# incidents stay bounded (~100 s of creations) while every event type still flows.
LIFE_SCALE = 60.0
Event = dict[str, object]
DeliveryCallback = Callable[[confluent_kafka.KafkaError | None, confluent_kafka.Message], None]


def stamp_ms(at: float) -> str:
    """RFC 3339 with milliseconds: the event time is the send time, to the millisecond."""
    ms = int(at * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


class Lifecycles:
    """Events of overlapping incident lives, in (scaled) event-time order; an incident's
    events always come in order, as the worker expects of a live feed."""

    def __init__(self, rate: float, seed: int = 1) -> None:
        self.rng = Random(f"live:{seed}")
        self.every = EVENTS_PER_INCIDENT / rate  # schedule seconds between creations
        self.day = int(time.time())  # only names the incident ids' date
        self.heap: list[tuple[float, int, int, Event]] = []
        self.incidents = 0

    def next(self) -> Event:
        # Open the next incident when its creation is due before the earliest pending event.
        while not self.heap or self.incidents * self.every <= self.heap[0][0]:
            n, created = self.incidents, self.incidents * self.every
            for seq, (at, event) in enumerate(incident_life(n, self.day, self.rng)):
                heapq.heappush(self.heap, (created + (at - self.day) / LIFE_SCALE, n, seq, event))
            self.incidents += 1
        return heapq.heappop(self.heap)[3]


@dataclass
class Sent:
    """Every message handed to Kafka: its send (= event) time, then what Kafka said."""

    at: list[float] = field(default_factory=list)
    partition: list[int] = field(default_factory=list)
    offset: list[int] = field(default_factory=list)  # -1 until acknowledged, -2 failed
    acked_at: list[float] = field(default_factory=list)  # when the ack was served
    acked: int = 0
    failed: int = 0
    failure: str = ""

    def callback(self, i: int) -> DeliveryCallback:
        def done(error: confluent_kafka.KafkaError | None, msg: confluent_kafka.Message) -> None:
            if error is not None:
                self.offset[i] = -2
                self.failed += 1
                self.failure = self.failure or error.str()
                return
            self.partition[i], self.offset[i] = msg.partition() or 0, msg.offset() or 0
            self.acked_at[i] = time.time()
            self.acked += 1

        return done


class Feed:
    """Sends at a steady ``rate`` from the moment it is made; the pace carries on across
    ``send_until`` calls (warm-up, measured window, tail are one sustained stream)."""

    def __init__(self, bootstrap: str, topic: str, source: str, rate: float) -> None:
        self.producer = confluent_kafka.Producer(
            {
                "bootstrap.servers": bootstrap,
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 5,  # live: small batches, low latency
                "partitioner": "murmur2_random",  # as the replay and the Java client
            }
        )
        self.topic, self.rate = topic, rate
        self.headers: list[tuple[str, str | bytes | None]] = [(SOURCE_HEADER, source.encode())]
        self.lives = Lifecycles(rate)
        self.sent = Sent()
        self.started = time.monotonic()

    def send_until(self, deadline: float) -> None:
        """Send every event due before ``deadline`` (monotonic), polling for deliveries."""
        sent = self.sent
        while True:
            due = self.started + len(sent.at) / self.rate
            if due >= deadline:
                while (left := deadline - time.monotonic()) > 0:
                    self.producer.poll(left)  # returns early when a delivery is served
                return
            wait = due - time.monotonic()
            if wait > 0.001:
                self.producer.poll(wait)  # serves delivery callbacks while it waits
                continue
            event = self.lives.next()
            now = time.time()
            event["occurred_at"] = stamp_ms(now)
            i = len(sent.at)
            sent.at.append(now)
            sent.partition.append(-1)
            sent.offset.append(-1)
            sent.acked_at.append(0.0)
            self.producer.produce(
                self.topic,
                json.dumps(event, separators=(",", ":")).encode(),
                str(event["incident_id"]).encode(),
                on_delivery=sent.callback(i),
                headers=self.headers,
            )
            self.producer.poll(0)

    def close(self) -> None:
        self.producer.flush(30)


class Poller(threading.Thread):
    def __init__(self, every_s: float) -> None:
        super().__init__(daemon=True)
        self.every_s = every_s
        self.halt = threading.Event()
        self.errors = 0
        self.error = ""
        self.polls: list[float] = []  # when each poll began: the resolution achieved

    def poll(self) -> None:
        raise NotImplementedError

    def run(self) -> None:
        while not self.halt.is_set():
            self.polls.append(time.time())
            try:
                self.poll()
            except (redis.RedisError, OSError, ValueError, KeyError) as exc:
                self.errors += 1
                self.error = self.error or f"{type(exc).__name__}: {exc}"
            self.halt.wait(self.every_s)

    def stop(self) -> None:
        self.halt.set()
        self.join(10)


class Positions(Poller):
    """The worker's per-partition position (``<prefix>:pos``, field P: the last offset of
    partition P applied, written after the state it covers): when each value was first seen.
    A time is taken after the reply, so latencies from it are upper bounds (by one poll)."""

    def __init__(self, client: redis.Redis, prefix: str, every_s: float = 0.005) -> None:
        super().__init__(every_s)
        self.client, self.key = client, keys.positions(prefix)
        self.times: dict[int, list[float]] = defaultdict(list)
        self.offsets: dict[int, list[int]] = defaultdict(list)

    def poll(self) -> None:
        raw: dict[bytes, bytes] = self.client.hgetall(self.key)  # type: ignore[assignment]
        now = time.time()
        for name, value in raw.items():
            if b":" in name:  # P:source: what a shard held, not the partition's position
                continue
            p, pos = int(name), int(value)
            seen = self.offsets[p]
            if not seen or pos > seen[-1]:
                seen.append(pos)
                self.times[p].append(now)

    def applied_at(self, partition: int, offset: int) -> float | None:
        """First time the partition's position was seen at or past ``offset``."""
        seen = self.offsets.get(partition, [])
        i = bisect_left(seen, offset)
        return self.times[partition][i] if i < len(seen) else None


class Scrapes(Poller):
    """Every scrape of one series Prometheus holds: its timestamp (scrape start, ms), its
    value, and when a query first returned it (taken after the reply)."""

    def __init__(self, base_url: str, selector: str, interval: float, every: float = 0.1) -> None:
        super().__init__(every)
        span = f"{max(60, math.ceil(4 * interval))}s"  # a few scrapes back: none is missed
        query = urllib.parse.urlencode({"query": f"{selector}[{span}]"})
        self.url = f"{base_url}/api/v1/query?{query}"
        self.seen: dict[int, tuple[float, float]] = {}

    def poll(self) -> None:
        with urllib.request.urlopen(self.url, timeout=5) as response:
            doc: dict[str, Any] = json.loads(response.read())
        now = time.time()
        for series in doc["data"]["result"]:
            for ts, value in series["values"]:
                ms = round(float(ts) * 1000)
                if ms not in self.seen:
                    self.seen[ms] = (now, float(value))

    def latest_ms(self) -> int:
        return max(self.seen, default=-1)


def interval_s(text: str) -> float:
    """A Prometheus duration ("15s", "1m30s", "500ms") in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+)(ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return sum(int(n) * units[u] for n, u in parts)


def pending(feed: Feed, positions: Positions, scrapes: Scrapes, lo: int, hi: int) -> bool:
    """Whether some measured event is not yet acknowledged, in Redis, or scraped after."""
    sent, ends = feed.sent, dict[int, int]()
    for i in range(lo, hi):
        if sent.offset[i] == -1:
            return True
        if sent.offset[i] >= 0:
            ends[sent.partition[i]] = max(ends.get(sent.partition[i], -1), sent.offset[i])
    applied = [positions.applied_at(p, off) for p, off in ends.items()]
    if any(t is None for t in applied):
        return True
    return scrapes.latest_ms() < max((t or 0.0 for t in applied), default=0.0) * 1000


def shard_totals(client: redis.Redis, prefix: str, source: str, partitions: int) -> list[int]:
    """[applied, duplicate, rejected] across the source's shards."""
    totals = [0, 0, 0]
    for p in range(partitions):
        key = keys.shard(prefix, source, p) + keys.META
        meta: dict[bytes, bytes] = client.hgetall(key)  # type: ignore[assignment]
        for name, value in meta.items():
            i = {b"applied": 0, b"duplicate": 1}.get(name, 2 if name.startswith(b"rej:") else -1)
            if i >= 0:
                totals[i] += int(value)
    return totals


def start_command(
    command: str, env: dict[str, str], log_path: Path, procs: list[subprocess.Popen[bytes]]
) -> subprocess.Popen[bytes]:
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "demandmon.cli", command],
            env=env,
            cwd=log_path.parent,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    procs.append(proc)  # the caller stops it on any exit path
    return proc


def check_alive(procs: dict[str, subprocess.Popen[bytes]], logs: Path) -> None:
    for name, proc in procs.items():
        if proc.poll() is not None:
            raise RuntimeError(f"the {name} exited ({proc.returncode}); logs in {logs}")


def target_up(base_url: str, job: str) -> bool:
    """Whether Prometheus's last scrape of ``job`` succeeded."""
    with urllib.request.urlopen(f"{base_url}/api/v1/targets", timeout=5) as response:
        doc: dict[str, Any] = json.loads(response.read())
    targets = doc["data"]["activeTargets"]
    return any(t["labels"].get("job") == job and t["health"] == "up" for t in targets)


def pct(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted values (p99 of 100 values is the 99th)."""
    if not ordered:
        return float("nan")
    rank = math.ceil(round(q * len(ordered), 9))  # round: 0.99 * 100 is 99.00000000000001
    return ordered[min(len(ordered), max(rank, 1)) - 1]
