"""The measurements: produce, the real worker to exact Redis state, and the two raw limits."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import redis
from events import BenchEvents
from kafka import KafkaProducer

from demandmon.state import keys
from deploy.stack.procs import stop_child
from schemas.vocabulary import SOURCE_HEADER

SOURCE = "bench"
REPO = Path(__file__).resolve().parent.parent
POLL_S = 0.2
# The run fails rather than hangs when the worker makes no progress for this long.
STALL_S = 120.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


def produce(bootstrap: str, topic: str, events: BenchEvents) -> tuple[float, list[int]]:
    """Send every event (acks=all); returns (seconds, partition of each event)."""
    # kafka-python, as the replay sent before librdkafka: all events are on Kafka before
    # the worker starts, so its speed does not matter here.
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, batch_size=512 * 1024
    )
    headers = [(SOURCE_HEADER, SOURCE.encode())]
    started = time.monotonic()
    try:
        futures = [
            producer.send(topic, key=k, value=v, headers=headers)
            for k, v in zip(events.keys, events.values, strict=True)
        ]
        producer.flush()
        elapsed = time.monotonic() - started
        # The partitioner's choice, read back, so raw limit B shards exactly as the worker.
        return elapsed, [f.get(timeout=60).partition for f in futures]
    finally:
        producer.close()


def shard_counts(client: redis.Redis, prefix: str, partitions: int) -> int:
    """Events the worker has accounted for: applied + duplicate + every rej:* counter."""
    pipe = client.pipeline(transaction=False)
    for p in range(partitions):
        pipe.hgetall(keys.shard(prefix, SOURCE, p) + "meta")
    total = 0
    for meta in pipe.execute():
        for name, value in meta.items():
            if name in (b"applied", b"duplicate") or name.startswith(b"rej:"):
                total += int(value)
    return total


def meta_totals(client: redis.Redis, prefix: str, partitions: int) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for p in range(partitions):
        for name, value in client.hgetall(keys.shard(prefix, SOURCE, p) + "meta").items():
            if name not in (b"wm", b"off", b"lw", b"c0", b"c1"):
                out[name.decode() if isinstance(name, bytes) else name] += int(value)
    return dict(out)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def proc_status(pid: int, field_name: str) -> int:
    """A kB figure from /proc/PID/status (VmHWM: peak resident set)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return 0


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def script_usec(client: redis.Redis) -> tuple[int, int]:
    """(calls, microseconds) Redis spent in EVAL/EVALSHA so far: the apply script's cost."""
    stats = client.info("commandstats")
    calls = usec = 0
    for name in ("cmdstat_evalsha", "cmdstat_eval"):
        calls += int(stats.get(name, {}).get("calls", 0))
        usec += int(stats.get(name, {}).get("usec", 0))
    return calls, usec


@dataclass
class WorkerRun:
    total_s: float = 0.0
    startup_s: float = 0.0
    first_count: int = 0
    peak_rss_kb: int = 0
    worker_cpu_s: float = 0.0
    startup_cpu_s: float = 0.0  # worker CPU used by the time its first events showed up
    redis_cpu_s: float = 0.0
    kafka_cpu_s: float = 0.0
    script_calls: int = 0
    script_s: float = 0.0
    meta: dict[str, int] = field(default_factory=dict)
    samples: list[tuple[float, int]] = field(default_factory=list)

    def rate(self, n: int) -> float:
        return n / self.total_s

    def steady_cpu_us(self, n: int) -> float:
        """Worker CPU per event once running: imports and group join left out."""
        return (self.worker_cpu_s - self.startup_cpu_s) / (n - self.first_count) * 1e6

    def steady_rate(self, n: int) -> float:
        """Events after the first applied batch over the time after it: start-up excluded."""
        span = self.total_s - self.startup_s
        return (n - self.first_count) / span if span > 0 else float("nan")


def run_worker(
    env: dict[str, str],
    client: redis.Redis,
    prefix: str,
    partitions: int,
    n: int,
    log_path: Path,
    service_pids: dict[str, int],
    procs: list[subprocess.Popen[bytes]],
    profile_to: Path | None = None,
    workers: int = 1,
    also: list[str] | None = None,
) -> WorkerRun:
    """Start the real worker (``workers`` of them in one group) and time it until Redis
    accounts for all ``n`` events. ``also`` is a command started at the same moment (the
    replay, for a file-to-state run).

    With ``profile_to`` it runs under cProfile (slower), which writes there on exit."""
    run = WorkerRun()
    profiler = ["-m", "cProfile", "-o", str(profile_to)] if profile_to else []
    before = {name: cpu_s(pid) for name, pid in service_pids.items()}
    calls0, usec0 = script_usec(client)
    commands = [[sys.executable, *profiler, "-m", "demandmon.cli", "worker"]] * workers
    with open(log_path, "ab") as log:
        started = time.monotonic()
        started_procs = [
            subprocess.Popen(
                [*command],
                env={
                    **env,
                    "DEMANDMON_WORKER_INSTANCE_ID": f"bench-worker-{i}",
                    "DEMANDMON_WORKER_WEB_PORT": str(free_port()),
                },
                cwd=log_path.parent,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            for i, command in enumerate(commands + ([also] if also else []))
        ]
    procs.extend(started_procs)  # the caller stops them on any exit path
    worker_procs, extra = started_procs[:workers], started_procs[workers:]
    last_count, last_change = 0, started
    while True:
        time.sleep(POLL_S)
        now = time.monotonic()
        count = shard_counts(client, prefix, partitions)
        run.samples.append((now - started, count))
        if count and not run.first_count:
            run.startup_s, run.first_count = now - started, count
            run.startup_cpu_s = sum(cpu_s(p.pid) for p in worker_procs)
        if count >= n:
            run.total_s = now - started
            break
        if count != last_count:
            last_count, last_change = count, now
        for p in worker_procs:
            if p.poll() is not None:
                raise RuntimeError(f"a worker exited ({p.returncode}); log: {log_path}")
        for p in extra:
            if p.poll() not in (None, 0):
                raise RuntimeError(f"{also} exited ({p.returncode}); log: {log_path}")
        if now - last_change > STALL_S:
            raise RuntimeError(f"no progress for {STALL_S:.0f}s at {count}/{n}; log: {log_path}")
    # Read before stopping: VmHWM and CPU vanish with the process.
    run.peak_rss_kb = max(proc_status(p.pid, "VmHWM") for p in worker_procs)
    run.worker_cpu_s = sum(cpu_s(p.pid) for p in worker_procs)
    used = {name: cpu_s(pid) - before[name] for name, pid in service_pids.items()}
    run.redis_cpu_s, run.kafka_cpu_s = used.get("redis", 0.0), used.get("kafka", 0.0)
    calls1, usec1 = script_usec(client)
    run.script_calls, run.script_s = calls1 - calls0, (usec1 - usec0) / 1e6
    run.meta = meta_totals(client, prefix, partitions)
    for p in started_procs:
        stop_child(p)
    return run


@dataclass
class Memory:
    keys: int = 0
    bytes: int = 0
    seen: int = 0  # event ids held for de-duplication (within the horizon)
    incidents: int = 0  # incident records held


def keyspace(client: redis.Redis, prefix: str) -> Memory:
    """What one run's key prefix holds, by MEMORY USAGE over every key (all samples)."""
    mem = Memory()
    names = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.memory_usage(name, samples=0)
    mem.keys = len(names)
    mem.bytes = sum(int(b or 0) for b in pipe.execute())
    for name in names:
        if name.endswith(b":seen"):
            mem.seen += int(client.zcard(name))
        elif name.endswith(b":inc"):
            mem.incidents += int(client.hlen(name))
    return mem


def drop_prefix(client: redis.Redis, prefix: str) -> None:
    names = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    for lo in range(0, len(names), 500):
        client.unlink(*names[lo : lo + 500])
