"""`demandmon worker`: the Faust app. One agent consumes the incident event topic in
batches and applies them to Redis; the worker serves its own metrics at /metrics."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

import faust
import redis
import redis.asyncio
from prometheus_client import generate_latest

from agents.classify import MappingError, RcrpMapping, load_mapping
from agents.incident_events import BatchApplier
from agents.metrics import WorkerMetrics
from demandmon.cliargs import CommandParser
from demandmon.settings import Settings, settings_or_exit
from demandmon.state.store import StateStore, StoreConfig
from deploy.stack.procs import port_in_use
from streams.topics import KafkaUnavailable, ensure_topics

log = logging.getLogger("demandmon.worker")
STARTUP_WAIT_S = 60.0


def create_app(settings: Settings, mapping: RcrpMapping, metrics: WorkerMetrics) -> faust.App:
    app = faust.App(
        settings.consumer_group,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        value_serializer="raw",
        key_serializer="raw",
        topic_partitions=settings.partitions,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        stream_buffer_maxsize=settings.batch_max * 2,
        broker_commit_every=settings.batch_max,
        broker_commit_interval=1.0,
        # Applying is idempotent (offset guard + event ids in Redis), so shutdown and
        # rebalance need not wait for a batch that may be stuck retrying an outage.
        stream_wait_empty=False,
        web_enabled=True,
        web_bind="127.0.0.1",
        web_port=settings.worker_web_port,
        web_host="127.0.0.1",
    )
    events_topic = app.topic(
        settings.events_topic,
        key_type=bytes,
        value_type=bytes,
        value_serializer="raw",
        key_serializer="raw",
        partitions=settings.partitions,
    )
    deadletter = app.topic(settings.deadletter_topic, value_serializer="raw", key_serializer="raw")
    client = redis.asyncio.Redis.from_url(settings.redis_url, socket_timeout=30)
    store = StateStore(
        client,
        StoreConfig(settings.key_prefix, settings.retention_s, settings.max_future_s),
    )
    applier = BatchApplier(settings, store, mapping, metrics, deadletter)

    # concurrency=1: per-partition order matters and Faust can commit past an in-flight
    # message with more (faust-streaming issue 606).
    @app.agent(events_topic, concurrency=1, name="apply_incident_events")
    async def apply_incident_events(stream: Any) -> None:
        await applier.run(stream.take_events(settings.batch_max, within=settings.batch_within_s))

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        # aiohttp refuses a charset inside content_type.
        return web.bytes(
            generate_latest(metrics.registry), content_type="text/plain; version=0.0.4"
        )

    return app


def wait_for_services(settings: Settings) -> None:
    """Bounded wait for Redis and Kafka, so a worker started with the stack just works."""
    deadline = time.monotonic() + STARTUP_WAIT_S
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=2)
    while True:
        try:
            client.ping()
            break
        except redis.RedisError as exc:
            if time.monotonic() >= deadline:
                raise KafkaUnavailable(f"Redis is not answering ({type(exc).__name__})") from None
            time.sleep(1)
    ensure_topics(settings, wait_s=max(1.0, deadline - time.monotonic()))


def main(argv: list[str]) -> int:
    parser = CommandParser(prog="demandmon worker", description=__doc__)
    parser.add_argument("--loglevel", default="warning", choices=["debug", "info", "warning"])
    parser.add_argument("--rcrp-mapping", type=Path, default=None, help="RCRP mapping JSON")
    args = parser.parse_args(argv)
    settings = settings_or_exit("demandmon worker")
    if port_in_use(settings.worker_web_port):
        print(
            f"demandmon worker: web port 127.0.0.1:{settings.worker_web_port} is in use "
            "(another worker? set DEMANDMON_WORKER_WEB_PORT)",
            file=sys.stderr,
        )
        return 1
    try:
        mapping = load_mapping(args.rcrp_mapping)
        wait_for_services(settings)
    except (MappingError, KafkaUnavailable) as exc:
        print(f"demandmon worker: {exc}", file=sys.stderr)
        return 1
    logging.basicConfig(level=args.loglevel.upper())
    app = create_app(settings, mapping, WorkerMetrics.create())
    worker = faust.Worker(app, loglevel=args.loglevel, quiet=True)
    worker.execute_from_commandline()
    return 0
