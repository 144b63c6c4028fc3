"""What the worker's Kafka consumer is made with, and what it makes of a record."""

from __future__ import annotations

from typing import Any

from agents.batch import Consumed
from demandmon.clients import kafka_security
from demandmon.settings import Settings


def consumed(record: Any) -> Consumed:
    headers = record.headers or ()
    # Copied only when some value is not bytes (Kafka allows null header values).
    if not all(type(v) is bytes for _, v in headers):
        headers = [(str(k), bytes(v or b"")) for k, v in headers]
    return Consumed(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        headers=headers,
        timestamp_ms=record.timestamp,
    )


def consumer_options(settings: Settings) -> dict[str, Any]:
    session_ms = int(settings.kafka_session_timeout_s * 1000)
    return {
        "bootstrap_servers": settings.kafka_bootstrap,
        "group_id": settings.consumer_group,
        "client_id": "demandmon-worker",
        "group_instance_id": settings.worker_instance_id or None,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": session_ms,
        "heartbeat_interval_ms": max(500, session_ms // 5),
        "max_poll_records": settings.batch_max,
        "max_partition_fetch_bytes": max(1024 * 1024, settings.max_message_bytes * 4),
        **kafka_security(settings),
    }


def offsets_client_options(settings: Settings) -> dict[str, Any]:
    """A consumer that never joins the group nor fetches: end offsets only."""
    return {
        "bootstrap_servers": settings.kafka_bootstrap,
        "group_id": None,
        "client_id": "demandmon-worker-offsets",
        "enable_auto_commit": False,
        **kafka_security(settings),
    }
