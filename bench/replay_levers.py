"""``--levers`` of bench/replay_speed.py: bare producers of the other clients and settings on
the same messages, as ratios to the one the replay uses: kafka-python (the replay's former
settings, then tuned, then compressed), aiokafka (per-message send and whole batches per
partition), and confluent-kafka with other settings (lz4, zstd, a shorter linger)."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable
from functools import partial
from typing import Any

from kafka import KafkaProducer
from replay_measure import SOURCE, Bench, Message, Timed, bare, log, timed

from demandmon.clients import kafka_security
from demandmon.settings import get_settings
from streams.replay.kafka_client import source_headers


def _kafka_python(bench: Bench, messages: list[Message], **options: Any) -> Timed:
    topic = bench.topic("kp")
    settings = get_settings("replay")
    producer = KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        max_request_size=2 << 20,
        **kafka_security(settings),
        **options,
    )
    headers = source_headers(SOURCE)

    def send() -> None:
        for key, value in messages:
            producer.send(topic, key=key, value=value, headers=headers)
        producer.flush()

    try:
        result = timed(len(messages), send)
    finally:
        producer.close()
    bench.check(topic, len(messages))
    return result


def _aiokafka(bench: Bench, messages: list[Message], batches: bool, **options: Any) -> Timed:
    from aiokafka import AIOKafkaProducer
    from kafka.partitioner.default import murmur2

    topic = bench.topic("aio")
    settings = get_settings("replay")
    headers = source_headers(SOURCE)

    async def send() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            acks="all",
            enable_idempotence=True,
            **kafka_security(settings),
            **options,
        )
        await producer.start()
        try:
            if not batches:
                pending = [
                    await producer.send(topic, value, key=key, headers=headers)
                    for key, value in messages
                ]
                await asyncio.gather(*pending)
                return
            # Whole batches per partition, partitioned by murmur2 as the replay does.
            parts = len(await producer.partitions_for(topic))
            open_batches = {p: producer.create_batch() for p in range(parts)}
            sent = []
            for key, value in messages:
                p = (murmur2(key) & 0x7FFFFFFF) % parts
                if open_batches[p].append(key=key, value=value, timestamp=None, headers=headers):
                    continue
                sent.append(await producer.send_batch(open_batches[p], topic, partition=p))
                open_batches[p] = producer.create_batch()
                open_batches[p].append(key=key, value=value, timestamp=None, headers=headers)
            for p, batch in open_batches.items():
                if batch.record_count():
                    sent.append(await producer.send_batch(batch, topic, partition=p))
            await asyncio.gather(*sent)
        finally:
            await producer.stop()

    result = timed(len(messages), lambda: asyncio.run(send()))
    bench.check(topic, len(messages))
    return result


def levers(bench: Bench, messages: list[Message]) -> list[tuple[str, Timed | str]]:
    """Bare producers of other clients and settings, on the same messages."""
    big = {"linger_ms": 50, "batch_size": 1 << 20}
    out: list[tuple[str, Timed | str]] = []

    def lever(name: str, measure: Callable[[], Timed]) -> None:
        log(f"lever: {name}")
        out.append((name, measure()))

    for codec in ("lz4", "zstd"):
        lever(
            f"confluent-kafka, the replay's settings but {codec}",
            partial(bare, bench, messages, **{"compression.type": codec}),
        )
    lever(
        "confluent-kafka, the replay's settings but linger 5 ms",
        lambda: bare(bench, messages, **{"linger.ms": 5}),
    )
    lever(
        "kafka-python, former replay settings (linger 20 ms, 512 KiB)",
        lambda: _kafka_python(
            bench, messages, linger_ms=20, batch_size=512 << 10, compression_type=None
        ),
    )
    lever(
        "kafka-python, linger 50 ms, 1 MiB",
        lambda: _kafka_python(bench, messages, compression_type=None, **big),
    )
    for codec, module in (("lz4", "lz4"), ("zstd", "zstandard"), ("gzip", "gzip")):
        name = f"kafka-python, linger 50 ms, 1 MiB, {codec}"
        if importlib.util.find_spec(module) is None:
            out.append((name, f"skipped: no {module} module"))
            continue
        lever(name, partial(_kafka_python, bench, messages, compression_type=codec, **big))
    aio = {"linger_ms": 50, "max_batch_size": 1 << 20}
    lever("aiokafka send(), linger 50 ms, 1 MiB", lambda: _aiokafka(bench, messages, False, **aio))
    lever(
        "aiokafka send_batch() per partition, 1 MiB",
        lambda: _aiokafka(bench, messages, True, max_batch_size=1 << 20),
    )
    return out
