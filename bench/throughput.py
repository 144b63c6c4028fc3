"""Throughput benchmark: the real worker against a private local stack, to exact Redis state.

    .venv/bin/python bench/throughput.py --events 200000 --partitions 12 [--days 70]
        [--compare-sizes] [--keep-stack]

Per run size: generate events, produce them all (before the worker starts, so the worker's
rate is measured and not the producer's), start `demandmon worker` and time it until the
shard counters account for every event; then the two raw limits on the same events. See
bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import FrameType

import redis
from events import generate
from measure import (
    REPO,
    drop_prefix,
    keyspace,
    produce,
    raw_consume,
    raw_redis,
    run_worker,
)
from phases import measure_phases, phase_table
from report import SizeResult, table, verdict
from workerprof import summary

from demandmon.kafka_topics import ensure_topics
from demandmon.settings import Settings
from deploy.stack import control
from deploy.stack.procs import stop_child

STACK_NAME = "bench"


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def run_size(
    stack_env: dict[str, str],
    service_pids: dict[str, int],
    count: int,
    days: float,
    partitions: int,
    workdir: Path,
    procs: list[subprocess.Popen[bytes]],
    profile_to: Path | None,
) -> SizeResult:
    run_id = uuid.uuid4().hex[:8]
    topic, prefix = f"bench.{run_id}.events", f"b{run_id}"
    env = {
        **os.environ,
        **stack_env,
        "DEMANDMON_EVENTS_TOPIC": topic,
        "DEMANDMON_DEADLETTER_TOPIC": f"{topic}.deadletter",
        "DEMANDMON_CONSUMER_GROUP": f"bench-{run_id}",
        "DEMANDMON_KEY_PREFIX": prefix,
        "DEMANDMON_PARTITIONS": str(partitions),
        "PYTHONPATH": str(REPO),
    }
    settings = Settings(
        kafka_bootstrap=stack_env["DEMANDMON_KAFKA_BOOTSTRAP"],
        events_topic=topic,
        deadletter_topic=f"{topic}.deadletter",
        partitions=partitions,
    )
    client = redis.Redis.from_url(stack_env["DEMANDMON_REDIS_URL"])
    log(f"run {run_id}: generating {count:,} events over {days:g} days")
    events = generate(count, days)
    # The topic exists with P partitions before anything is sent (no auto-creation).
    ensure_topics(settings, wait_s=30)
    log(f"producing to {topic} ({partitions} partitions)")
    produce_s, event_partitions = produce(settings.kafka_bootstrap, topic, events)
    before = used_memory(client)
    log(f"starting the worker (prefix {prefix}); {count:,} events to apply")
    worker = run_worker(
        env,
        client,
        prefix,
        partitions,
        count,
        workdir / f"worker-{run_id}.log",
        service_pids,
        procs,
        profile_to,
    )
    after = used_memory(client)
    memory = keyspace(client, prefix)
    log(f"worker done in {worker.total_s:.1f}s; raw limit A (aiokafka consume + decode)")
    raw_a = raw_consume(settings.kafka_bootstrap, topic, f"bench-raw-{run_id}", count)
    log("raw limit B (Lua dedupe + count)")
    raw_prefix = f"r{run_id}"
    raw_b = raw_redis(client, raw_prefix, events, event_partitions, settings.batch_max)
    drop_prefix(client, raw_prefix)
    return SizeResult(
        events=events,
        partition_of=event_partitions,
        partitions=partitions,
        batch_max=settings.batch_max,
        produce_s=produce_s,
        worker=worker,
        raw_a=raw_a,
        raw_b=raw_b,
        used_before=before,
        used_after=after,
        keyspace=memory,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench/throughput.py", description=__doc__)
    parser.add_argument("--events", type=int, default=200_000, help="events per run")
    parser.add_argument("--partitions", type=int, default=12, help="topic partitions")
    parser.add_argument("--days", type=float, default=28.0, help="event-time span in days")
    parser.add_argument(
        "--compare-sizes",
        action="store_true",
        help="also run 2x the events over 2x the days (same density) to show bounded memory",
    )
    parser.add_argument("--keep-stack", action="store_true", help="leave the stack running")
    parser.add_argument(
        "--phases",
        action="store_true",
        help="also time the worker's own phases in-process on the first run's events",
    )
    parser.add_argument(
        "--profile-worker",
        type=Path,
        default=None,
        metavar="FILE",
        help="run the first worker under cProfile, dump to FILE and summarise (slower)",
    )
    return parser


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM/SIGHUP take the same path as Ctrl-C, so the finally blocks clean up.
    raise KeyboardInterrupt


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.events < 1 or args.partitions < 1 or args.days <= 0:
        print("events and partitions must be positive, days above zero", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="demandmon-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    results: list[SizeResult] = []
    notes: list[str] = []
    keep = False
    try:
        log(f"starting a private stack under {root}")
        state = control.up(root, STACK_NAME, scrape_interval="15s")
        pids: dict[str, int] = {s: state.pids[s] for s in ("kafka", "redis") if s in state.pids}
        sizes = [(args.events, args.days)]
        if args.compare_sizes:
            sizes.append((2 * args.events, 2 * args.days))
        for n, (count, days) in enumerate(sizes):
            profile_to = args.profile_worker.resolve() if args.profile_worker and not n else None
            results.append(
                run_size(
                    state.endpoints(), pids, count, days, args.partitions, root, procs, profile_to
                )
            )
        first = results[0]
        if args.profile_worker:
            notes.append("NOTE: the first worker ran under cProfile; its rates are slowed.")
            notes.append(summary(args.profile_worker, first.n))
        if args.phases:
            log("timing the worker's phases in-process")
            settings = Settings(redis_url=state.endpoints()["DEMANDMON_REDIS_URL"])
            times = measure_phases(first.events, first.partition_of, settings, settings.redis_url)
            notes.append(phase_table(times, first.worker.steady_cpu_us(first.n)))
        keep = args.keep_stack
    except KeyboardInterrupt:
        log("interrupted; cleaning up")
        return 130
    finally:
        for proc in procs:
            stop_child(proc)
        if keep:
            stop = f".venv/bin/demandmon stack down --dir {root} --name {STACK_NAME} --purge"
            log(f"stack kept; stop it with: {stop}")
        else:
            control.down(root, STACK_NAME, purge=True)
            shutil.rmtree(root, ignore_errors=True)
    print(table(results))
    print(verdict(results))
    for note in notes:
        print(note)
    print(
        f"benchmark wall time {time.monotonic() - started:,.0f} s (load avg now "
        f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
