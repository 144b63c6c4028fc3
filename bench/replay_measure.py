"""The replay benchmark's measurements: `demandmon replay` in process, and the bare producer
sending the same messages from memory, each on a fresh topic of one stack.

Every setting the commands read comes from the environment, which ``Bench`` sets for its
own topics and key prefix while it is open and puts back as it was when it closes (so a
caller in the same process, bench/throughput.py, is left as it was).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import confluent_kafka
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from demandmon.clients import kafka_security, redis_client
from demandmon.kafka_topics import topics_ready
from demandmon.settings import get_settings
from demandmon.state import keys
from streams.generate import generate_stream
from streams.generate.writer import write_jsonl
from streams.replay.cli import main as replay_main
from streams.replay.kafka_client import (
    POLL_EVERY,
    PRODUCER_CONFIG,
    librdkafka_config,
    replay_producer,
    source_headers,
)
from streams.replay.reader import Batch, Record, encode, read_records
from streams.replay.scan import scan

SOURCE = "bench-replay"
_SENT = re.compile(r"sent ([0-9,]+) events in [0-9.]+ s \(([0-9,]+) events/s\)")

Message = tuple[bytes, bytes]


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


@dataclass
class Timed:
    events: int
    wall_s: float
    cpu_s: float  # this process's CPU, librdkafka's threads included

    @property
    def rate(self) -> float:
        return self.events / self.wall_s

    @property
    def cpu_us(self) -> float:
        return self.cpu_s / self.events * 1e6

    def __add__(self, other: Timed) -> Timed:
        """Both sends as one: the rate over their total time."""
        return Timed(
            self.events + other.events, self.wall_s + other.wall_s, self.cpu_s + other.cpu_s
        )


@dataclass
class Run:
    bare: Timed  # before and after the replay, as one
    replay: Timed
    replay_send_rate: float  # the send phase alone, as the replay's summary line says
    scan_s: float  # the replay's first reading of the file (streams.replay.scan), timed apart

    @property
    def ratio(self) -> float:
        return self.replay.rate / self.bare.rate


def write_stream(path: Path, count: int, profile: str, seed: int) -> None:
    """``count`` events of the generated month, further seeds appended when it holds fewer."""

    def months() -> Iterator[dict[str, object]]:
        for n in itertools.count(seed):
            yield from generate_stream(profile, n)[0]

    write_jsonl(path, itertools.islice(months(), count))


def replay_messages(path: Path) -> list[Message]:
    """What the replay sends for the file, unshifted and unpaced: (key, value) of every
    event in file order, lines the scan marked sendable as they are among them."""
    out: list[Message] = []
    for item in read_records(path, scan(path, False)):
        if type(item) is Batch:
            out += zip(item.keys, item.values, strict=True)
        elif type(item) is Record:
            out.append((item.key, encode(item, 0)))
    return out


class Bench:
    """Fresh topics and a fresh Redis key prefix on one stack (``env``: its endpoints),
    through the environment every command reads; as a context manager, everything made
    is deleted and the environment put back at the end."""

    def __init__(self, env: dict[str, str]) -> None:
        self.run_id = uuid.uuid4().hex[:8]
        self.topics: list[str] = []
        self.env = {
            **env,
            "DEMANDMON_KEY_PREFIX": f"rs{self.run_id}",
            "DEMANDMON_DEADLETTER_TOPIC": f"rs.{self.run_id}.deadletter",
            "DEMANDMON_EVENTS_TOPIC": f"rs.{self.run_id}.none",
        }
        self.saved: dict[str, str | None] = {}

    def __enter__(self) -> Bench:
        self.saved = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        get_settings.cache_clear()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.clean()
        finally:
            for k, v in self.saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            get_settings.cache_clear()

    def topic(self, what: str) -> str:
        """A new topic, created before anything is timed; the settings then name it."""
        name = f"rs.{self.run_id}.{what}.{len(self.topics)}"
        os.environ["DEMANDMON_EVENTS_TOPIC"] = name
        get_settings.cache_clear()
        self.topics.append(name)
        topics_ready(get_settings("replay"), [name], wait_s=30)
        return name

    def check(self, topic: str, expected: int) -> None:
        settings = get_settings()
        consumer = KafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap, **kafka_security(settings)
        )
        try:
            parts = consumer.partitions_for_topic(topic) or set()
            ends = consumer.end_offsets([TopicPartition(topic, p) for p in parts])
            found = int(sum(ends.values()))
        finally:
            consumer.close()
        if found != expected:
            raise RuntimeError(f"{topic} holds {found:,} events, not {expected:,}")

    def clean(self) -> None:
        settings = get_settings()
        client = redis_client(settings)
        client.delete(keys.registry(settings.key_prefix), keys.replay(settings.key_prefix, SOURCE))
        admin = KafkaAdminClient(
            bootstrap_servers=settings.kafka_bootstrap, **kafka_security(settings)
        )
        try:
            existing = set(admin.list_topics())
            gone = [t for t in [*self.topics, settings.deadletter_topic] if t in existing]
            if gone:
                admin.delete_topics(gone)
        finally:
            admin.close()


def timed(events: int, work: Callable[[], None]) -> Timed:
    cpu, wall = time.process_time(), time.perf_counter()
    work()
    return Timed(events, time.perf_counter() - wall, time.process_time() - cpu)


def bare(bench: Bench, messages: list[Message], **changed: str | int) -> Timed:
    """The replay's producer, warmed, sending the messages from memory: the least the
    replay's sending could cost. ``changed``: librdkafka settings other than the
    replay's (levers)."""
    topic = bench.topic("bare")
    settings = get_settings("replay")
    producer = replay_producer(settings, topic)
    if changed:
        config = {**librdkafka_config(settings), **PRODUCER_CONFIG, **changed}
        producer.kafka = confluent_kafka.Producer(config, on_delivery=producer.deliveries.delivered)
    kafka, headers = producer.kafka, source_headers(SOURCE)
    # Warm: connected, and its idempotent producer id acquired (librdkafka retries that
    # after 500 ms when it asks before its broker connection is up), so the bare rate is
    # sending alone. One message to the run's dead-letter topic, not to the one counted.
    kafka.produce(settings.deadletter_topic, b"", b"warm-up", headers=[])
    if kafka.flush(10):
        raise RuntimeError("bare producer: the warm-up message was not delivered")

    def send() -> None:
        produce, poll = kafka.produce, kafka.poll
        for n, (key, value) in enumerate(messages, 1):
            while True:
                try:
                    produce(topic, value, key, headers=headers)
                    break
                except BufferError:
                    poll(0.05)
            if n % POLL_EVERY == 0:
                poll(0)
        if kafka.flush(-1) or producer.deliveries.failed:
            raise RuntimeError(f"bare producer: {producer.failure_line(0)}")

    result = timed(len(messages), send)
    bench.check(topic, len(messages))
    return result


def replay(bench: Bench, path: Path, events: int) -> tuple[Timed, float]:
    """`demandmon replay FILE --source bench-replay`, in process; and its own send rate."""
    topic = bench.topic("replay")
    out, err = io.StringIO(), io.StringIO()
    code = 0

    def run() -> None:
        nonlocal code
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = replay_main([str(path), "--source", SOURCE])

    result = timed(events, run)
    if code != 0:
        raise RuntimeError(f"replay exited {code}: {err.getvalue().strip()[-500:]}")
    sent = _SENT.search(out.getvalue())
    if sent is None or int(sent.group(1).replace(",", "")) != events:
        raise RuntimeError(f"replay did not send {events:,} events: {out.getvalue()[:300]}")
    bench.check(topic, events)
    return result, float(sent.group(2).replace(",", ""))


def measure_runs(bench: Bench, path: Path, messages: list[Message], runs: int) -> list[Run]:
    """Per run: bare producer, replay, bare producer (the bare rate over both sends, so a
    load that comes and goes weighs on both sides alike); then the scan alone, timed."""
    out = []
    for n in range(runs):
        log(f"run {n + 1}/{runs}: bare producer, replay, bare producer ({len(messages):,} events)")
        before = bare(bench, messages)
        replay_result, send_rate = replay(bench, path, len(messages))
        after = bare(bench, messages)
        started = time.perf_counter()
        scan(path, False)
        out.append(Run(before + after, replay_result, send_rate, time.perf_counter() - started))
    return out
