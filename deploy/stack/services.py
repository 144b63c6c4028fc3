"""Render each service's configuration and start it as a local process on 127.0.0.1.

A secure stack (``state.secure``) renders the secure shape from deploy/stack/secure.py:
TLS and authentication on every listener, its secrets under ``.stack/<name>/secrets``.
"""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

import redis

from deploy.secrets.files import replace_private
from deploy.stack import secure
from deploy.stack.install import kafka_libs_dir, storage_format_args
from deploy.stack.layout import StackLayout, StackState, marker
from deploy.stack.monitoring import (
    ALERTMANAGER_TEMPLATE,
    RULES_DIR,
    alertmanager_config,
    prometheus_config,
    reload_prometheus,
    start_alertmanager,
    start_prometheus,
)
from deploy.stack.procs import StackError, spawn, wait_until

# Re-exported: the stack's callers and tests use them from here.
__all__ = [
    "ALERTMANAGER_TEMPLATE",
    "RULES_DIR",
    "alertmanager_config",
    "marker",
    "prometheus_config",
    "reload_prometheus",
]

KAFKA_LOG4J = """\
Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: WARN
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka.server.KafkaServer
        level: INFO
      - name: kafka.server.BrokerServer
        level: INFO
"""


@dataclass(frozen=True)
class Started:
    pid: int
    marker: str


def _http_ok(url: str) -> Callable[[], bool]:
    def ready() -> bool:
        with urllib.request.urlopen(url, timeout=1) as response:
            return int(response.status) == 200

    return ready


def kafka_properties(layout: StackLayout, state: StackState) -> str:
    port, ctrl = state.ports["kafka"], state.ports["kafka_controller"]
    if state.secure:
        listeners = secure.kafka_properties(state)
    else:
        listeners = [
            f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{ctrl}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{ctrl}",
            "inter.broker.listener.name=PLAINTEXT",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        ]
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.bootstrap.servers=127.0.0.1:{ctrl}",
            *listeners,
            f"log.dirs={layout.data('kafka')}",
            "num.partitions=12",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=12",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=false",
            "",
        ]
    )


def start_kafka(layout: StackLayout, state: StackState) -> subprocess.Popen[bytes]:
    libs = kafka_libs_dir()
    if state.secure:
        # It holds the admin's password (the inter-broker login): a secret.
        props = state.secrets().folder / "kafka-server.properties"
        replace_private(props, kafka_properties(layout, state))
    else:
        props = layout.conf("server.properties")
        props.write_text(kafka_properties(layout, state))
    log4j = layout.conf("log4j2.yaml")
    log4j.write_text(KAFKA_LOG4J)
    java = ["java", "-Xms512m", "-Xmx512m", "-XX:+UseG1GC", "-cp", f"{libs}/*"]
    log = layout.log("kafka")
    fmt_args = storage_format_args(state.kafka_cluster_id, props)
    argfile = state.secrets().folder / "kafka-format.args" if state.secure else None
    if argfile is not None:
        # The SCRAM users' passwords go in a 0600 java @argfile, not on the command line.
        replace_private(argfile, secure.kafka_format_argfile(state, props))
        fmt_args = [f"@{argfile}"]
    fmt = [*java, f"-Dlog4j2.configurationFile={log4j}", *fmt_args]
    try:
        with open(log, "ab") as out:
            if subprocess.run(fmt, stdout=out, stderr=subprocess.STDOUT).returncode:
                raise StackError(f"kafka: formatting the log directory failed (log: {log})")
    finally:
        if argfile is not None:
            argfile.unlink(missing_ok=True)
    argv = [
        *java,
        f"-Dkafka.logs.dir={layout.dir / 'logs'}",
        f"-Dlog4j2.configurationFile={log4j}",
        "kafka.Kafka",
        str(props),
    ]
    return spawn(argv, log, layout.dir)


def kafka_ready(state: StackState) -> Callable[[], bool]:
    """Kafka answers a metadata request (a secure stack: as admin over SASL_SSL)."""
    options = (
        {**secure.kafka_client_options(state), "bootstrap_timeout_ms": 2000} if state.secure else {}
    )

    def ready() -> bool:
        from kafka import KafkaAdminClient

        admin = KafkaAdminClient(
            bootstrap_servers=f"127.0.0.1:{state.ports['kafka']}",
            request_timeout_ms=2000,
            **options,
        )
        try:
            admin.list_topics()
            return True
        finally:
            admin.close()

    return ready


def redis_conf(layout: StackLayout, state: StackState) -> str:
    secured = state.secure
    listen = secure.redis_tls_lines(state) if secured else [f"port {state.ports['redis']}"]
    auth = [] if secured else [f"requirepass {state.redis_password}"]
    return "\n".join(
        [
            "bind 127.0.0.1",
            "protected-mode yes",
            *listen,
            "daemonize no",
            f"dir {layout.data('redis')}",
            "appendonly yes",
            "appendfsync everysec",
            *auth,
            "save ''",
            "",
        ]
    )


def start_redis(layout: StackLayout, state: StackState) -> subprocess.Popen[bytes]:
    conf = layout.conf("redis.conf")
    # 0600 from the start: a plain stack's holds its password.
    replace_private(conf, redis_conf(layout, state))
    return spawn(["redis-server", str(conf)], layout.log("redis"), layout.dir)


def redis_ready(state: StackState) -> Callable[[], bool]:
    def ready() -> bool:
        if state.secure:
            admin = secure.redis_client(state)
            try:
                return bool(admin.ping())
            finally:
                admin.close()
        client = redis.Redis(
            host="127.0.0.1",
            port=state.ports["redis"],
            password=state.redis_password,
            socket_timeout=1,
        )
        try:
            return bool(client.ping())
        finally:
            client.close()

    return ready


STARTERS: dict[str, Callable[[StackLayout, StackState], subprocess.Popen[bytes]]] = {
    "kafka": start_kafka,
    "redis": start_redis,
    "prometheus": start_prometheus,
    "alertmanager": start_alertmanager,
}


def readiness(service: str, state: StackState) -> Callable[[], bool]:
    p = state.ports
    if service == "kafka":
        return kafka_ready(state)
    if service == "redis":
        return redis_ready(state)
    if state.secure:
        return secure.web_ready(state, service)
    if service == "prometheus":
        return _http_ok(f"http://127.0.0.1:{p['prometheus']}/-/ready")
    return _http_ok(f"http://127.0.0.1:{p['alertmanager']}/-/ready")


TIMEOUTS = {"kafka": 90.0, "redis": 20.0, "prometheus": 30.0, "alertmanager": 30.0}


def start_and_wait(service: str, layout: StackLayout, state: StackState) -> int:
    proc = STARTERS[service](layout, state)
    wait_until(
        readiness(service, state),
        service=service,
        proc=proc,
        log_path=layout.log(service),
        timeout_s=TIMEOUTS[service],
    )
    return proc.pid
