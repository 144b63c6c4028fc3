"""Render each service's configuration and start it as a local process on 127.0.0.1."""

from __future__ import annotations

import subprocess
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis

from deploy.stack.install import kafka_libs_dir
from deploy.stack.layout import StackLayout, StackState
from deploy.stack.procs import Marker, StackError, spawn, wait_until

REPO_DEPLOY = Path(__file__).resolve().parent.parent
RULES_DIR = REPO_DEPLOY / "prometheus" / "rules"
ALERTMANAGER_TEMPLATE = REPO_DEPLOY / "alertmanager" / "alertmanager.yml.tmpl"

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


def marker(service: str, layout: StackLayout, state: StackState) -> Marker:
    """Strings in the process's command line that prove it is this stack's service."""
    if service == "redis":
        # redis-server rewrites its process title to "redis-server 127.0.0.1:PORT".
        return (str(layout.dir), f"redis-server 127.0.0.1:{state.ports['redis']}")
    return (str(layout.dir),)


def _http_ok(url: str) -> Callable[[], bool]:
    def ready() -> bool:
        with urllib.request.urlopen(url, timeout=1) as response:
            return int(response.status) == 200

    return ready


def start_kafka(layout: StackLayout, state: StackState) -> subprocess.Popen[bytes]:
    libs = kafka_libs_dir()
    port, ctrl = state.ports["kafka"], state.ports["kafka_controller"]
    props = layout.conf("server.properties")
    props.write_text(
        "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.bootstrap.servers=127.0.0.1:{ctrl}",
                f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{ctrl}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{ctrl}",
                "inter.broker.listener.name=PLAINTEXT",
                "controller.listener.names=CONTROLLER",
                "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
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
    )
    log4j = layout.conf("log4j2.yaml")
    log4j.write_text(KAFKA_LOG4J)
    java = ["java", "-Xms512m", "-Xmx512m", "-XX:+UseG1GC", "-cp", f"{libs}/*"]
    log = layout.log("kafka")
    fmt = [
        *java,
        f"-Dlog4j2.configurationFile={log4j}",
        "kafka.tools.StorageTool",
        "format",
        "--standalone",
        "--ignore-formatted",
        "-t",
        state.kafka_cluster_id,
        "-c",
        str(props),
    ]
    with open(log, "ab") as out:
        if subprocess.run(fmt, stdout=out, stderr=subprocess.STDOUT).returncode:
            raise StackError(f"kafka: formatting the log directory failed (log: {log})")
    argv = [
        *java,
        f"-Dkafka.logs.dir={layout.dir / 'logs'}",
        f"-Dlog4j2.configurationFile={log4j}",
        "kafka.Kafka",
        str(props),
    ]
    return spawn(argv, log, layout.dir)


def kafka_ready(state: StackState) -> Callable[[], bool]:
    def ready() -> bool:
        from kafka import KafkaAdminClient

        admin = KafkaAdminClient(
            bootstrap_servers=f"127.0.0.1:{state.ports['kafka']}",
            request_timeout_ms=2000,
        )
        try:
            admin.list_topics()
            return True
        finally:
            admin.close()

    return ready


def start_redis(layout: StackLayout, state: StackState) -> subprocess.Popen[bytes]:
    conf = layout.conf("redis.conf")
    conf.write_text(
        "\n".join(
            [
                "bind 127.0.0.1",
                "protected-mode yes",
                f"port {state.ports['redis']}",
                "daemonize no",
                f"dir {layout.data('redis')}",
                "appendonly yes",
                "appendfsync everysec",
                f"requirepass {state.redis_password}",
                "save ''",
                "",
            ]
        )
    )
    conf.chmod(0o600)
    return spawn(["redis-server", str(conf)], layout.log("redis"), layout.dir)


def redis_ready(state: StackState) -> Callable[[], bool]:
    def ready() -> bool:
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


def prometheus_config(state: StackState) -> str:
    interval = state.scrape_interval
    rules = state.rules_dir or str(RULES_DIR)
    p = state.ports
    return f"""\
global:
  scrape_interval: {interval}
  evaluation_interval: {interval}
rule_files:
  - {rules}/*.yml
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["127.0.0.1:{p["alertmanager"]}"]
scrape_configs:
  - job_name: demandmon-exporter
    static_configs:
      - targets: ["127.0.0.1:{p["exporter"]}"]
  - job_name: demandmon-worker
    static_configs:
      - targets: ["127.0.0.1:{p["worker"]}"]
  - job_name: prometheus
    static_configs:
      - targets: ["127.0.0.1:{p["prometheus"]}"]
"""


def reload_prometheus(layout: StackLayout, state: StackState) -> None:
    """Rewrite the configuration (e.g. after ``rules_dir`` changed) and reload it live."""
    layout.conf("prometheus.yml").write_text(prometheus_config(state))
    layout.save(state)
    url = f"http://127.0.0.1:{state.ports['prometheus']}/-/reload"
    request = urllib.request.Request(url, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        if int(response.status) != 200:
            raise StackError(f"prometheus: reload failed (log: {layout.log('prometheus')})")


def start_prometheus(layout: StackLayout, state: StackState) -> subprocess.Popen[bytes]:
    conf = layout.conf("prometheus.yml")
    conf.write_text(prometheus_config(state))
    argv = [
        "prometheus",
        f"--config.file={conf}",
        f"--storage.tsdb.path={layout.data('prometheus')}",
        f"--web.listen-address=127.0.0.1:{state.ports['prometheus']}",
        "--web.enable-lifecycle",
        "--storage.tsdb.retention.time=30d",
    ]
    return spawn(argv, layout.log("prometheus"), layout.dir)


def alertmanager_config(state: StackState) -> str:
    if ALERTMANAGER_TEMPLATE.exists():
        return ALERTMANAGER_TEMPLATE.read_text().replace("__WEBHOOK_URL__", state.webhook_url)
    return f"""\
route:
  receiver: webhook
  group_by: [alertname, source, bcu]
  group_wait: 1s
receivers:
  - name: webhook
    webhook_configs:
      - url: "{state.webhook_url}"
"""


def start_alertmanager(layout: StackLayout, state: StackState) -> subprocess.Popen[bytes]:
    conf = layout.conf("alertmanager.yml")
    conf.write_text(alertmanager_config(state))
    argv = [
        "prometheus-alertmanager",
        f"--config.file={conf}",
        f"--storage.path={layout.data('alertmanager')}",
        f"--web.listen-address=127.0.0.1:{state.ports['alertmanager']}",
        "--cluster.listen-address=",
    ]
    return spawn(argv, layout.log("alertmanager"), layout.dir)


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
