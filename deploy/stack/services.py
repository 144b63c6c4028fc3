"""Render each service's configuration and start it as a local process on 127.0.0.1.

A secure stack (``state.secure``) renders the secure shape from deploy/stack/secure.py:
TLS and authentication on every listener, its secrets under ``.stack/<name>/secrets``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis
from prometheus_client.parser import text_string_to_metric_families

from deploy.secrets.files import replace_private
from deploy.stack import secure
from deploy.stack.install import kafka_libs_dir
from deploy.stack.layout import StackLayout, StackState
from deploy.stack.procs import Marker, StackError, alive, spawn, wait_until
from deploy.stack.web import request

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
    fmt_args = [
        "kafka.tools.StorageTool",
        "format",
        "--standalone",
        "--ignore-formatted",
        "-t",
        state.kafka_cluster_id,
        "-c",
        str(props),
    ]
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


def prometheus_config(state: StackState) -> str:
    interval = state.scrape_interval
    rules = state.rules_dir or str(RULES_DIR)
    if state.secure:
        return secure.prometheus_config(state, rules)
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


RELOAD_TIMEOUT_S = 15.0
RELOADED = "prometheus_config_last_reload_success_timestamp_seconds"
RELOAD_OK = "prometheus_config_last_reload_successful"


def _reload_gauges(state: StackState) -> tuple[float, float]:
    """(time of the last successful reload, 1 if the last reload succeeded) from the
    secure Prometheus's own /metrics."""
    _, text = request(
        f"https://127.0.0.1:{state.ports['prometheus']}/metrics",
        ca_file=str(state.secrets().ca_cert),
        auth=secure.web_auth(state),
        timeout_s=5,
    )
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in (RELOADED, RELOAD_OK):
                values[sample.name] = sample.value
    return values.get(RELOADED, 0.0), values.get(RELOAD_OK, 0.0)


def _reload_by_signal(layout: StackLayout, state: StackState) -> None:
    """A secure Prometheus has no lifecycle API: SIGHUP its process (only if the pid is
    still this stack's Prometheus), then wait until it reports the reload."""
    log = layout.log("prometheus")
    pid = state.pids.get("prometheus")
    if pid is None or not alive(pid, marker("prometheus", layout, state)):
        raise StackError(f"prometheus: not running, nothing to reload (log: {log})")
    try:
        before, ok_before = _reload_gauges(state)
    except (OSError, urllib.error.HTTPError, ValueError) as exc:
        raise StackError(f"prometheus: no answer before the reload (log: {log})") from exc
    os.kill(pid, signal.SIGHUP)
    deadline = time.monotonic() + RELOAD_TIMEOUT_S
    while time.monotonic() < deadline:
        time.sleep(0.1)
        try:
            reloaded, ok = _reload_gauges(state)
        except (OSError, urllib.error.HTTPError, ValueError):
            continue
        if reloaded > before:
            return
        if ok_before and not ok:  # this reload failed (the config is kept as it was)
            raise StackError(f"prometheus: reload failed (log: {log})")
    raise StackError(f"prometheus: no reload within {RELOAD_TIMEOUT_S:.0f} s (log: {log})")


def reload_prometheus(layout: StackLayout, state: StackState) -> None:
    """Rewrite the configuration (e.g. after ``rules_dir`` changed) and reload it live:
    through /-/reload on a plain stack, by SIGHUP on a secure one (no lifecycle API)."""
    layout.conf("prometheus.yml").write_text(prometheus_config(state))
    layout.save(state)
    if state.secure:
        _reload_by_signal(layout, state)
        return
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
        # A secure stack: TLS and basic auth, and no lifecycle API (reload by SIGHUP).
        *(
            [f"--web.config.file={state.secrets().prometheus_web_config}"]
            if state.secure
            else ["--web.enable-lifecycle"]
        ),
        "--storage.tsdb.retention.time=30d",
    ]
    return spawn(argv, layout.log("prometheus"), layout.dir)


def alertmanager_config(state: StackState) -> str:
    rendered = _alertmanager_rendered(state)
    return secure.alertmanager_config(state, rendered) if state.secure else rendered


def _alertmanager_rendered(state: StackState) -> str:
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
        *([f"--web.config.file={state.secrets().alertmanager_web_config}"] if state.secure else []),
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
