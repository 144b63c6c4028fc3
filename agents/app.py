"""`demandmon worker`: the Faust app. Its consuming service reads the incident event topic
in whole batches and applies them to Redis; the worker serves its own metrics at /metrics."""

from __future__ import annotations

import errno
import logging
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import faust
import mode
import redis
from aiokafka import AIOKafkaProducer
from faust.app.base import BootStrategy
from prometheus_client import generate_latest

from agents.applier import BatchApplier
from agents.classify import MappingError, RcrpMapping, load_mapping
from agents.consumer import EventConsumer
from agents.deadletter_sender import DeadLetterSender
from agents.metrics import WorkerMetrics
from demandmon.arguments import CommandParser
from demandmon.clients import (
    ClientSetupError,
    RedisUnavailable,
    ServiceUnavailable,
    kafka_security,
    redis_async_client,
    redis_client,
    redis_failure,
)
from demandmon.kafka_topics import topics_ready
from demandmon.settings import Settings, settings_or_exit
from demandmon.state.store import StateStore, StoreConfig
from demandmon.web import metrics_auth_ok, server_ssl_context

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
        web_ssl_context=server_ssl_context(settings),
        # Nothing but /metrics: Faust's router and table views are of no use here and
        # would answer without authentication.
        web_router_enabled=False,
        web_tables_enabled=False,
    )
    client = redis_async_client(settings, timeout_s=30)
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
        if not metrics_auth_ok(settings, request.headers.get("Authorization")):
            return web.text(
                "authentication required\n",
                status=401,
                headers={"WWW-Authenticate": 'Basic realm="demandmon"'},
            )
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
            **kafka_security(self.settings),
        )
        await self.producer.start()

    async def on_stop(self) -> None:
        if self.producer is not None:
            await self.producer.stop()


def wait_for_services(settings: Settings, wait_s: float = STARTUP_WAIT_S) -> None:
    """Bounded wait for Redis and Kafka while they come up (a timeout, a reset); a
    refused port (nothing listens: a wrong port, or no stack) and a wrong password or
    certificate are one line at once (a ServiceUnavailable naming the service). On the
    plain stack the topics are created, on a secure one checked."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            # Made inside the wait: a cluster client reads the cluster's layout at once.
            client = redis_client(settings, timeout_s=2)
            try:
                client.ping()
            finally:
                client.close()
            break
        except redis.RedisError as exc:
            failure = redis_failure(settings, exc)
            if not failure.retry or failure.refused or time.monotonic() >= deadline:
                raise RedisUnavailable(failure.line) from None
            time.sleep(1)
    names = [settings.events_topic, settings.deadletter_topic]
    topics_ready(settings, names, wait_s=max(1.0, deadline - time.monotonic()))


def web_port_problem(host: str, port: int) -> str | None:
    """Why the worker could not listen on host:port, or None: a bind test, the way the
    web server will bind (so a port taken on another address of the host counts too)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            where = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
            if exc.errno == errno.EADDRINUSE:
                return f"web port {where} is in use (another worker? set DEMANDMON_WORKER_WEB_PORT)"
            return f"cannot listen on {where} ({exc.strerror or type(exc).__name__})"
    return None


def main(argv: list[str]) -> int:
    parser = CommandParser(prog="demandmon worker", description=__doc__)
    parser.add_argument("--loglevel", default="warning", choices=["debug", "info", "warning"])
    parser.add_argument("--rcrp-mapping", type=Path, default=None, help="RCRP mapping JSON")
    args = parser.parse_args(argv)
    settings = settings_or_exit("demandmon worker", "worker")
    problem = web_port_problem(settings.worker_web_bind, settings.worker_web_port)
    if problem is not None:
        print(f"demandmon worker: {problem}", file=sys.stderr)
        return 1
    try:
        mapping = load_mapping(args.rcrp_mapping)
        server_ssl_context(settings)  # an unreadable certificate is one line, now
        wait_for_services(settings)
    except (MappingError, ServiceUnavailable, ClientSetupError) as exc:
        print(f"demandmon worker: {exc}", file=sys.stderr)
        return 1
    logging.basicConfig(level=args.loglevel.upper())
    app = create_app(settings, mapping, WorkerMetrics.create())
    worker = faust.Worker(app, loglevel=args.loglevel, quiet=True)
    worker.execute_from_commandline()
    return 0
