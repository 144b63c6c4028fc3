"""The whole pipeline on a secure stack (docs/security.md): `demandmon topics` (admin)
creates the topics and grants the ACLs, `replay` (replay role) registers its source and
sends over SASL_SSL, the worker (worker role) applies over TLS to Redis, the exporter
(exporter role) serves HTTPS /metrics behind basic auth, Prometheus scrapes it over TLS;
every figure equals the oracle's recount. Each command reads its own role's credentials
from the stack folder (DEMANDMON_STACK_DIR), as a user's commands do."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from kafka import KafkaConsumer, KafkaProducer

from demandmon.clients import kafka_security, redis_client
from demandmon.settings import Settings
from demandmon.web import http_get, metrics_get, prometheus_get
from deploy.stack.procs import free_port, stop_child
from streams.generate import generate_stream
from tests.conftest import REPO, SecureStack
from tests.helpers import SampleKey, source_figures, wait_for
from tests.oracle import Oracle, total

pytestmark = pytest.mark.integration

SOURCE = "secure-nov"


@dataclass
class SecurePipeline:
    stack: SecureStack
    env: dict[str, str]
    workdir: Path
    procs: list[subprocess.Popen[bytes]]

    @property
    def prefix(self) -> str:
        return self.env["DEMANDMON_KEY_PREFIX"]

    def settings(self, role: str) -> Settings:
        """What a command acting as ``role`` reads (endpoints, then its role file)."""
        overrides = {k: v for k, v in self.env.items() if k.startswith("DEMANDMON_")}
        variables = {**self.stack.env(role), **overrides}
        # Strings all: pydantic converts them as it does variables.
        fields: dict[str, Any] = {
            k.removeprefix("DEMANDMON_").lower(): v for k, v in variables.items()
        }
        return Settings(_env_file=None, **fields)  # type: ignore[call-arg]

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "demandmon.cli", *args],
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            check=check,
            timeout=600,
        )

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"{args[0]}-{len(self.procs)}.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "demandmon.cli", *args],
            env={**self.env, **(env or {})},
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        return proc

    def url(self, port_var: str, path: str) -> str:
        return f"https://127.0.0.1:{self.stack.env()[port_var]}{path}"


@pytest.fixture
def secure_pipeline(secure_stack: SecureStack, tmp_path: Path) -> Iterator[SecurePipeline]:
    run_id = uuid.uuid4().hex[:8]
    # The Redis ACLs cover keys starting with the stack's prefix (docs/security.md).
    prefix = f"{secure_stack.state.key_prefix}_{run_id}"
    topic = f"secure.{run_id}.events"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DEMANDMON_")},
        "DEMANDMON_STACK_DIR": str(secure_stack.layout.dir),
        "DEMANDMON_EVENTS_TOPIC": topic,
        "DEMANDMON_DEADLETTER_TOPIC": f"{topic}.deadletter",
        "DEMANDMON_CONSUMER_GROUP": f"secure-{run_id}",
        "DEMANDMON_KEY_PREFIX": prefix,
        "DEMANDMON_PARTITIONS": "4",
        "PYTHONPATH": str(REPO),
    }
    pipe = SecurePipeline(secure_stack, env, tmp_path, [])
    try:
        yield pipe
    finally:
        for proc in pipe.procs:
            stop_child(proc)


def _scrape(pipe: SecurePipeline) -> dict[SampleKey, float]:
    from prometheus_client.parser import text_string_to_metric_families

    settings = pipe.settings("exporter")
    text = metrics_get(settings, pipe.url("DEMANDMON_EXPORTER_PORT", "/metrics")).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): float(s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _status(url: str, ca: str, username: str = "", password: str = "") -> int:
    try:
        http_get(url, ca_file=ca, username=username, password=password)
        return 200
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _kafka_client_options(pipe: SecurePipeline, role: str) -> dict[str, Any]:
    settings = pipe.settings(role)
    return {"bootstrap_servers": settings.kafka_bootstrap, **kafka_security(settings)}


def test_secure_pipeline_equals_the_oracle(secure_pipeline: SecurePipeline) -> None:
    pipe = secure_pipeline
    events, _ = generate_stream("sample", seed=21, duplicates=0.05, shuffle=True)
    path = pipe.workdir / "sample.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    oracle = Oracle()
    for e in events:
        oracle.feed(e, SOURCE)
    expected = {k: round(v, 6) for k, v in oracle.samples(SOURCE).items()}

    granted = pipe.run("topics")
    assert "granted" in granted.stdout, granted.stdout
    sent = pipe.run("replay", str(path), "--source", SOURCE, "--quiet")
    assert f"sent {len(events):,} events" in sent.stdout
    pipe.start("worker")
    pipe.start("exporter")

    # A producer that writes a source nobody registered: refused as bad_source, and no
    # figure, shard or series appears for it.
    replay_kafka = _kafka_client_options(pipe, "replay")
    producer = KafkaProducer(**replay_kafka, acks="all")
    stray = {**events[0], "event_id": "stray-1"}
    producer.send(
        pipe.env["DEMANDMON_EVENTS_TOPIC"],
        key=str(stray["incident_id"]).encode(),
        value=json.dumps(stray).encode(),
        headers=[("demandmon-source", b"not-registered")],
    )
    producer.flush()
    producer.close()

    got = wait_for(
        lambda: source_figures(_scrape(pipe), SOURCE),
        lambda s: s == expected,
        180,
        "the exporter's figures to equal the oracle's",
    )
    assert got == expected
    samples = _scrape(pipe)
    assert not [k for k in samples if ("source", "not-registered") in k[1]]
    unknown = (("reason", "bad_source"), ("source", "unknown"))
    assert samples[("demand_events_rejected_total", unknown)] == 1

    # The dead letter, read as admin.
    consumer = KafkaConsumer(
        pipe.env["DEMANDMON_DEADLETTER_TOPIC"],
        **_kafka_client_options(pipe, "admin"),
        auto_offset_reset="earliest",
        consumer_timeout_ms=10_000,
    )
    reasons = [dict(m.headers).get("demandmon-reason") for m in consumer]
    consumer.close()
    assert reasons == [b"bad_source"]

    # Prometheus scraped the exporter over TLS with basic auth.
    admin = pipe.settings("admin")
    rcrp = f'category!="not_rcrp",source="{SOURCE}",window="all"'
    want = total(expected, "demand_rcrp_incidents", window="all") - total(
        expected, "demand_rcrp_incidents", window="all", category="not_rcrp"
    )
    query = f"sum(demand_rcrp_incidents{{{rcrp}}})"

    def prom() -> float | None:
        url = f"{admin.prometheus_url}/api/v1/query?query=" + urllib.parse.quote(query)
        result = json.loads(prometheus_get(admin, url))["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    wait_for(prom, lambda v: v == want, 60, "Prometheus to scrape the figures over TLS")

    # Without credentials, /metrics of both is refused; /alerts wants its token.
    ca = admin.prometheus_ca_file
    for port_var in ("DEMANDMON_EXPORTER_PORT", "DEMANDMON_WORKER_WEB_PORT"):
        assert _status(pipe.url(port_var, "/metrics"), ca) == 401
        bad = _status(pipe.url(port_var, "/metrics"), ca, "prometheus", "wrong")
        assert bad == 401
    request = urllib.request.Request(
        pipe.url("DEMANDMON_EXPORTER_PORT", "/alerts"), data=b"{}", method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=ca))
        ).open(request, timeout=10)
    assert refused.value.code == 401

    # The exporter's Redis user reads; it cannot write.
    reader = redis_client(pipe.settings("exporter"))
    assert reader.exists(f"{pipe.prefix}:registry") == 1
    with pytest.raises(redis.exceptions.NoPermissionError):
        reader.set(f"{pipe.prefix}:forged", "1")

    # `sources delete` (admin) removes the source's keys and its series.
    deleted = pipe.run("sources", "delete", SOURCE, "--wait", "0")
    assert deleted.returncode == 0, deleted.stderr
    admin_redis = redis_client(pipe.settings("admin"))
    left = [k for k in admin_redis.scan_iter(f"{pipe.prefix}:*") if SOURCE.encode() in k]
    assert left == []
    assert not [k for k in _scrape(pipe) if ("source", SOURCE) in k[1]]


def test_a_worker_whose_consumer_is_refused_exits_non_zero(
    secure_pipeline: SecurePipeline,
) -> None:
    """The worker's Kafka user may read only the consumer group `demandmon topics` granted:
    a worker started with another group is refused by the broker; its consuming service
    dies, and the process exits non-zero for its supervisor instead of staying up idle."""
    pipe = secure_pipeline
    pipe.run("topics")
    worker = pipe.start(
        "worker",
        env={
            "DEMANDMON_CONSUMER_GROUP": pipe.env["DEMANDMON_CONSUMER_GROUP"] + "-not-granted",
            "DEMANDMON_WORKER_WEB_PORT": str(free_port()),
        },
    )
    code = worker.wait(timeout=90)
    assert code != 0
    log = next(pipe.workdir.glob("worker-*.log")).read_text(errors="replace")
    assert "GroupAuthorizationFailed" in log, log[-2000:]
