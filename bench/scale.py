"""Scale runs on the benchmark's stack: a Met-scale year from a file (the replay and the worker
running together, timed from both starting to exact Redis state), and more workers in one
consumer group on the same topic as the single-worker run."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import redis
from events import BenchEvents, generate
from measure import REPO, SOURCE, WorkerRun, drop_prefix, run_worker

from demandmon.kafka_topics import ensure_topics
from demandmon.settings import Settings
from demandmon.state.registry import register

YEAR_EVENTS = 25_000_000  # a year of Met-scale demand, in events
YEAR_TARGET_MIN = 15.0


@dataclass(frozen=True)
class Run:
    """Where one run's events go: its topic, consumer group and Redis key prefix."""

    run_id: str
    partitions: int

    @property
    def topic(self) -> str:
        return f"bench.{self.run_id}.events"

    @property
    def prefix(self) -> str:
        return f"b{self.run_id}"

    @classmethod
    def fresh(cls, partitions: int) -> Run:
        return cls(uuid.uuid4().hex[:8], partitions)

    def env(self, stack_env: dict[str, str], group: str = "", prefix: str = "") -> dict[str, str]:
        return {
            **os.environ,
            **stack_env,
            "DEMANDMON_EVENTS_TOPIC": self.topic,
            "DEMANDMON_DEADLETTER_TOPIC": f"{self.topic}.deadletter",
            "DEMANDMON_CONSUMER_GROUP": group or f"bench-{self.run_id}",
            "DEMANDMON_KEY_PREFIX": prefix or self.prefix,
            "DEMANDMON_PARTITIONS": str(self.partitions),
            "PYTHONPATH": str(REPO),
        }

    def settings(self, stack_env: dict[str, str]) -> Settings:
        return Settings(
            kafka_bootstrap=stack_env["DEMANDMON_KAFKA_BOOTSTRAP"],
            events_topic=self.topic,
            deadletter_topic=f"{self.topic}.deadletter",
            partitions=self.partitions,
        )


def met_scale_days(count: int) -> float:
    """The event-time span of ``count`` events at a Met-scale year's density."""
    return count / (YEAR_EVENTS / 365)


def write_file(events: BenchEvents, path: Path) -> None:
    with open(path, "wb") as out:
        for value in events.values:
            out.write(value)
            out.write(b"\n")


@dataclass
class YearRun:
    events: int
    worker: WorkerRun
    workers: int

    @property
    def year_min(self) -> float:
        """A Met-scale year at this run's rate, start-up included (linear extrapolation)."""
        return self.worker.total_s * YEAR_EVENTS / self.events / 60


def met_year(
    stack_env: dict[str, str],
    service_pids: dict[str, int],
    client: redis.Redis,
    count: int,
    partitions: int,
    workdir: Path,
    procs: list[subprocess.Popen[bytes]],
    workers: int = 1,
) -> YearRun:
    """``demandmon replay FILE`` and ``workers`` workers started together on a fresh topic;
    timed until the shards account for every event of the file."""
    run = Run.fresh(partitions)
    events = generate(count, met_scale_days(count))
    path = workdir / f"year-{run.run_id}.jsonl"
    write_file(events, path)
    ensure_topics(run.settings(stack_env), wait_s=30)
    replay = [sys.executable, "-m", "demandmon.cli", "replay", str(path)]
    worker = run_worker(
        run.env(stack_env),
        client,
        run.prefix,
        partitions,
        count,
        workdir / f"year-{run.run_id}.log",
        service_pids,
        procs,
        workers=workers,
        also=[*replay, "--source", SOURCE, "--quiet"],
    )
    path.unlink()
    drop_prefix(client, run.prefix)
    return YearRun(count, worker, workers)


def more_workers(
    stack_env: dict[str, str],
    service_pids: dict[str, int],
    client: redis.Redis,
    run: Run,
    count: int,
    workers: int,
    workdir: Path,
    procs: list[subprocess.Popen[bytes]],
    max_sources: int,
) -> WorkerRun:
    """``workers`` workers in a new group on a topic that already holds ``count`` events,
    into a new key prefix: the same work as the single-worker run, shared out."""
    again = f"{run.run_id}w{workers}"
    prefix = f"b{again}"
    register(client, prefix, SOURCE, max_sources)
    result = run_worker(
        run.env(stack_env, group=f"bench-{again}", prefix=prefix),
        client,
        prefix,
        run.partitions,
        count,
        workdir / f"workers-{again}.log",
        service_pids,
        procs,
        workers=workers,
    )
    drop_prefix(client, prefix)
    return result
