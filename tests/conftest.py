"""Fixtures: one real local stack per session (started by the project's own code), and a
fresh topic, consumer group and Redis key prefix per test, with the worker and exporter
running as real processes against them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import redis.cluster

from deploy.stack import control
from deploy.stack.layout import StackLayout, StackState
from deploy.stack.procs import free_port, stop_child
from tests.helpers import wait_for

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Stack:
    state: StackState
    webhook_port: int
    layout: StackLayout

    @property
    def env(self) -> dict[str, str]:
        return self.state.endpoints()

    @property
    def kafka(self) -> str:
        return self.env["DEMANDMON_KAFKA_BOOTSTRAP"]

    @property
    def redis_url(self) -> str:
        return self.env["DEMANDMON_REDIS_URL"]

    @property
    def prometheus(self) -> str:
        return self.env["DEMANDMON_PROMETHEUS_URL"]

    @property
    def alertmanager(self) -> str:
        return self.env["DEMANDMON_ALERTMANAGER_URL"]

    def redis(self) -> redis.Redis | redis.cluster.RedisCluster:
        """A blocking client of the stack's Redis: a cluster client on a cluster stack."""
        if self.state.redis_cluster:
            return redis.cluster.RedisCluster.from_url(self.redis_url)
        return redis.Redis.from_url(self.redis_url)


def _plain_stack(prefix: str, redis_cluster: bool = False) -> Iterator[Stack]:
    root = Path(tempfile.mkdtemp(prefix=prefix))
    name = f"test-{uuid.uuid4().hex[:8]}"
    webhook_port = free_port()
    try:
        state = control.up(
            root,
            name,
            scrape_interval="1s",
            webhook_url=f"http://127.0.0.1:{webhook_port}/alerts",
            redis_cluster=redis_cluster,
        )
        yield Stack(state, webhook_port, StackLayout(root, name))
    finally:
        control.down(root, name, purge=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """The real stack through the same code as `demandmon stack up`, torn down at the end.

    Local processes, not containers: this is the path CI exercises (no Docker engine).
    """
    yield from _plain_stack("demandmon-stack-")


@pytest.fixture(scope="session")
def cluster_stack() -> Iterator[Stack]:
    """A second stack whose Redis is a cluster of three masters, as `demandmon stack up
    --redis-cluster` makes it (tests/integration/test_redis_cluster.py), started on first
    use and torn down at the end."""
    yield from _plain_stack("demandmon-cluster-", redis_cluster=True)


@dataclass
class SecureStack:
    """A secure stack (docs/security.md): TLS and a user per role on every service."""

    state: StackState
    webhook_port: int
    layout: StackLayout

    def env(self, role: str | None = None) -> dict[str, str]:
        """The shared endpoints, plus ``role``'s users and password files when given."""
        return self.state.env(role)


@pytest.fixture(scope="session")
def secure_stack() -> Iterator[SecureStack]:
    """The secure stack through the same code as `demandmon stack up --secure`, started on
    first use and torn down at the end. Alertmanager's webhook points at a port the tests
    may serve (over HTTPS with the stack's web certificate)."""
    root = Path(tempfile.mkdtemp(prefix="demandmon-secure-"))
    name = f"secure-{uuid.uuid4().hex[:8]}"
    webhook_port = free_port()
    try:
        state = control.up(
            root,
            name,
            scrape_interval="1s",
            webhook_url=f"https://127.0.0.1:{webhook_port}/alerts",
            secure=True,
        )
        yield SecureStack(state, webhook_port, StackLayout(root, name))
    finally:
        control.down(root, name, purge=True)
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Pipeline:
    stack: Stack
    env: dict[str, str]
    topic: str
    deadletter: str
    prefix: str
    workdir: Path
    procs: list[subprocess.Popen[bytes]]

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.env['DEMANDMON_EXPORTER_PORT']}/metrics"

    def redis(self) -> redis.Redis | redis.cluster.RedisCluster:
        return self.stack.redis()

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "demandmon.cli", *args],
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            check=check,
            timeout=900,
        )

    def start(
        self, command: str, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"{command}-{len(self.procs)}.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "demandmon.cli", command, *args],
            env={**self.env, **(env or {})},
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        return proc

    def start_worker(self, web_port: int | None = None) -> subprocess.Popen[bytes]:
        """A worker; a second one at a time needs its own web port."""
        env = {"DEMANDMON_WORKER_WEB_PORT": str(web_port)} if web_port else None
        return self.start("worker", env=env)

    def start_exporter(self) -> subprocess.Popen[bytes]:
        proc = self.start("exporter")
        wait_for(
            lambda: (
                __import__("urllib.request")
                .request.urlopen(self.metrics_url.replace("/metrics", "/healthz"), timeout=2)
                .status
            ),
            lambda status: status == 200,
            30,
            "the exporter to answer",
        )
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        stop_child(proc)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in self.workdir.glob("*.log"))


@pytest.fixture
def pipeline(stack: Stack, tmp_path: Path) -> Iterator[Pipeline]:
    yield from pipeline_on(stack, tmp_path)


def pipeline_on(stack: Stack, tmp_path: Path) -> Iterator[Pipeline]:
    """A fresh topic, consumer group and key prefix on ``stack``; the processes started
    through it are stopped at the end."""
    run_id = uuid.uuid4().hex[:8]
    topic = f"test.{run_id}.events"
    env = {
        **os.environ,
        **stack.env,
        # The test stack's own folder: no stack of the checkout (.stack/default) leaks in.
        "DEMANDMON_STACK_DIR": str(stack.layout.dir),
        "DEMANDMON_EVENTS_TOPIC": topic,
        "DEMANDMON_DEADLETTER_TOPIC": f"{topic}.deadletter",
        "DEMANDMON_CONSUMER_GROUP": f"test-{run_id}",
        "DEMANDMON_KEY_PREFIX": f"t{run_id}",
        "DEMANDMON_PARTITIONS": "4",
        "PYTHONPATH": str(REPO),
    }
    pipe = Pipeline(stack, env, topic, f"{topic}.deadletter", f"t{run_id}", tmp_path, [])
    try:
        yield pipe
    finally:
        for proc in pipe.procs:
            pipe.stop(proc)
