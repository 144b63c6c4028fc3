"""`demandmon worker`: the Faust app. Its consuming service reads the incident event topic
in whole batches and applies them to Redis; the worker serves its own metrics at /metrics."""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import faust
import mode
import redis
import redis.asyncio
from aiokafka import AIOKafkaProducer
from faust.app.base import BootStrategy
from kafka.errors import KafkaError
from prometheus_client import generate_latest

from agents.classify import MappingError, RcrpMapping, load_mapping
from agents.consumer import EventConsumer
from agents.deadletter_sender import DeadLetterSender
from agents.incident_events import BatchApplier
from agents.metrics import WorkerMetrics
from demandmon.cliargs import CommandParser
from demandmon.settings import Settings, settings_or_exit
from demandmon.state.store import StateStore, StoreConfig
from deploy.stack.procs import port_in_use
from streams.topics import KafkaUnavailable, ensure_topics

log = logging.getLogger("demandmon.worker")
STARTUP_WAIT_S = 60.0


class _NoFaustConsumer(BootStrategy):
    """Faust runs the lifecycle and the web server; Kafka is read by EventConsumer."""

    enable_kafka = False


class WorkerApp(faust.App):
    BootStrategy = _NoFaustConsumer


def create_app(settings: Settings, mapping: RcrpMapping, metrics: WorkerMetrics) -> faust.App:
    datadir = settings.worker_data_dir or str(Path(tempfile.gettempdir()) / "demandmon-worker")
    app = WorkerApp(
        f"{settings.consumer_group}-app",
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        datadir=datadir,
        topic_disable_leader=True,
        web_enabled=True,
        web_bind=settings.worker_web_bind,
        web_port=settings.worker_web_port,
        web_host=settings.worker_web_bind,
    )
    client = redis.asyncio.Redis.from_url(settings.redis_url, socket_timeout=30)
    store = StateStore(client, StoreConfig(settings.key_prefix, settings.retention_s))
    producer = KafkaProducerService(settings)
    deadletters = DeadLetterSender(
        producer.get, settings.deadletter_topic, settings.deadletter_timeout_s, metrics
    )
    applier = BatchApplier(settings, store, mapping, metrics, deadletters)
    app.add_dependency(producer)
    app.add_dependency(EventConsumer(settings, applier, metrics))

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        # aiohttp refuses a charset inside content_type.
        return web.bytes(
            generate_latest(metrics.registry), content_type="text/plain; version=0.0.4"
        )

    return app


class KafkaProducerService(mode.Service):
    """The dead-letter producer, started and stopped with the app (aiokafka clients must
    be made inside the running event loop)."""

    def __init__(self, settings: Settings, **kw: Any) -> None:
        super().__init__(**kw)
        self.settings = settings
        self.producer: AIOKafkaProducer | None = None

    def get(self) -> AIOKafkaProducer:
        if self.producer is None:
            raise RuntimeError("the dead-letter producer is not started")
        return self.producer

    async def on_start(self) -> None:
        self.producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            client_id="demandmon-worker-deadletters",
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
        )
        await self.producer.start()

    async def on_stop(self) -> None:
        if self.producer is not None:
            await self.producer.stop()


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
    except KafkaError as exc:
        print(f"demandmon worker: Kafka refused the topics ({type(exc).__name__})", file=sys.stderr)
        return 1
    logging.basicConfig(level=args.loglevel.upper())
    app = create_app(settings, mapping, WorkerMetrics.create())
    worker = faust.Worker(app, loglevel=args.loglevel, quiet=True)
    worker.execute_from_commandline()
    return 0
