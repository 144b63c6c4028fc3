"""How far the worker is, told to Kafka and to the worker's metrics, for tools and
inspectors only: the worker never reads either back (its positions are in Redis)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from agents.metrics import WorkerMetrics

log = logging.getLogger("demandmon.worker")


async def commit_applied(
    consumer: AIOKafkaConsumer, topic: str, applied_through: Mapping[int, int]
) -> None:
    """Commit what is applied, for tools that read the group's lag; a failure is harmless."""
    offsets = {
        TopicPartition(topic, p): OffsetAndMetadata(through + 1, "")
        for p, through in applied_through.items()
        if through >= 0
    }
    if not offsets:
        return
    try:
        await consumer.commit(offsets)
    except KafkaError as exc:
        log.info("committing offsets to Kafka failed (%s); harmless", type(exc).__name__)


async def report_lag(
    consumer: AIOKafkaConsumer,
    applied_through: Mapping[int, int],
    metrics: WorkerMetrics,
    wait_s: float,
) -> None:
    """Each assigned partition's end offset and lag, so lag shows even while applying is
    stuck; never raises (lag is a report)."""
    assigned = sorted(consumer.assignment())
    if not assigned:
        return
    try:
        ends = await asyncio.wait_for(consumer.end_offsets(assigned), wait_s)
    except Exception as exc:
        log.info("reading end offsets failed (%s)", type(exc).__name__)
        return
    for tp, end in ends.items():
        through = applied_through.get(tp.partition)
        if through is None:
            continue
        label = str(tp.partition)
        metrics.end_offset.labels(label).set(end)
        metrics.lag.labels(label).set(max(0, end - (through + 1)))
