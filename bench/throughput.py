"""The performance goals of issue 11 on a private local stack, each printed with its verdict.

    .venv/bin/python bench/throughput.py            # every goal, about 15 minutes
    .venv/bin/python bench/throughput.py --quick    # every goal, small, under 2 minutes

The worker against two bare limits on the same events, two workers, a Met-scale year from a
file (replay and workers together), the replay producer against a bare producer, the
exporter with 20 sources, live latency at 500 ev/s. bench/README.md says what each means.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
from events import generate
from goals import Goal, goal_lines, interrupt_on_signals, wall_time_line
from measure import (
    SOURCE,
    drop_prefix,
    keyspace,
    produce,
    run_worker,
)
from phases import measure_phases, phase_table
from raw import raw_consume, raw_redis
from report import SizeResult, table, worker_goals
from scale import YEAR_EVENTS, YEAR_TARGET_MIN, Run, met_year, more_workers
from workerprof import summary

from demandmon.kafka_topics import ensure_topics
from demandmon.settings import Settings
from demandmon.state.registry import register
from deploy.stack import control
from deploy.stack.layout import StackState
from deploy.stack.procs import stop_child

STACK_NAME = "bench"
SCRAPE_INTERVAL = "5s"
LIVE_RATE = 500.0  # events/s, the live goal's sustained rate


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
) -> tuple[SizeResult, Run]:
    run = Run.fresh(partitions)
    settings = run.settings(stack_env)
    client = redis.Redis.from_url(stack_env["DEMANDMON_REDIS_URL"])
    # The worker applies registered sources only, as `demandmon replay` would register.
    register(client, run.prefix, SOURCE, settings.max_sources)
    log(f"run {run.run_id}: generating {count:,} events over {days:g} days")
    events = generate(count, days)
    # The topic exists with P partitions before anything is sent (no auto-creation).
    ensure_topics(settings, wait_s=30)
    log(f"producing to {run.topic} ({partitions} partitions)")
    produce_s, event_partitions = produce(settings.kafka_bootstrap, run.topic, events)
    before = used_memory(client)
    log(f"starting the worker (prefix {run.prefix}); {count:,} events to apply")
    worker = run_worker(
        run.env(stack_env),
        client,
        run.prefix,
        partitions,
        count,
        workdir / f"worker-{run.run_id}.log",
        service_pids,
        procs,
        profile_to,
    )
    after = used_memory(client)
    memory = keyspace(client, run.prefix)
    log(f"worker done in {worker.total_s:.1f}s; raw limit A (aiokafka consume + decode)")
    raw_a = raw_consume(settings.kafka_bootstrap, run.topic, f"bench-raw-{run.run_id}", count)
    log("raw limit B (Lua dedupe + count)")
    raw_prefix = f"r{run.run_id}"
    raw_b = raw_redis(client, raw_prefix, events, event_partitions, settings.batch_max)
    drop_prefix(client, raw_prefix)
    result = SizeResult(
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
    return result, run


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench/throughput.py", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="every goal, small, in < 2 min")
    parser.add_argument("--events", type=int, default=None, help="events per worker run")
    parser.add_argument("--partitions", type=int, default=12, help="topic partitions")
    parser.add_argument("--days", type=float, default=None, help="event-time span in days")
    parser.add_argument(
        "--year-events",
        type=int,
        default=None,
        help="events of the file-to-state run a Met year is extrapolated from (1M)",
    )
    parser.add_argument(
        "--year-workers", type=int, default=2, help="workers of the Met-year run (2)"
    )
    parser.add_argument(
        "--compare-sizes",
        action="store_true",
        help="also run 2x the events over 2x the days (same density) to show bounded memory",
    )
    parser.add_argument(
        "--only",
        default="worker,workers,year,replay,exporter,live",
        help="comma-separated goals to measure (default: all)",
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


@dataclass
class Outcome:
    results: list[SizeResult] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def measure_all(
    args: argparse.Namespace,
    state: StackState,
    root: Path,
    out: Outcome,
    procs: list[subprocess.Popen[bytes]],
) -> None:
    only = set(args.only.split(","))
    env = state.endpoints()
    pids: dict[str, int] = {s: state.pids[s] for s in ("kafka", "redis") if s in state.pids}
    client = redis.Redis.from_url(env["DEMANDMON_REDIS_URL"])
    sizes = [(args.events, args.days)]
    if args.compare_sizes:
        sizes.append((2 * args.events, 2 * args.days))
    first_run: Run | None = None
    for n, (count, days) in enumerate(sizes):
        profile_to = args.profile_worker.resolve() if args.profile_worker and not n else None
        result, run = run_size(env, pids, count, days, args.partitions, root, procs, profile_to)
        out.results.append(result)
        first_run = first_run or run
    goals, skipped, notes = worker_goals(out.results)
    out.goals += goals
    out.skipped += skipped
    out.notes += notes
    first = out.results[0]
    if "workers" in only and first_run is not None:
        log("two workers in one group on the same topic")
        two = more_workers(
            env, pids, client, first_run, first.n, 2, root, procs, Settings().max_sources
        )
        out.notes.append(
            f"two workers in one group on {args.partitions} partitions: {two.rate(first.n):,.0f}"
            f" ev/s = {two.rate(first.n) / first.e2e:.2f}x one worker ({first.e2e:,.0f} ev/s; "
            f"worker CPU {two.worker_cpu_s:,.1f} s vs {first.worker.worker_cpu_s:,.1f} s)"
        )
    if "year" in only:
        log(f"a Met-scale year: replay of a {args.year_events:,}-event file with the worker")
        year = met_year(
            env, pids, client, args.year_events, args.partitions, root, procs, args.year_workers
        )
        small = "" if args.year_events >= 1_000_000 else " (quick: under 1M events)"
        out.goals.append(
            Goal(
                "a Met-scale year, file to exact state, replay and worker together",
                year.year_min,
                YEAR_TARGET_MIN,
                "min",
                at_least=False,
                note=f"{year.workers} worker(s); extrapolated from {year.events:,} events in "
                f"{year.worker.total_s:,.1f} s"
                f" ({year.worker.rate(year.events):,.0f} ev/s, start-up included) to "
                f"{YEAR_EVENTS / 1e6:.0f} M events{small}",
            )
        )
    if "replay" in only:
        log("the replay producer against a bare producer")
        from replay_speed import measure_replay  # each goal's module only when measured

        out.goals += measure_replay(state, root, args.quick, procs)
    if "exporter" in only:
        log("exporter scrape time with 20 sources")
        from exporter_speed import measure_exporter

        out.goals += measure_exporter(state, root, args.quick, procs)
    if "live" in only:
        duration = 20.0 if args.quick else 300.0
        log(f"live latency at {LIVE_RATE:g} ev/s for {duration:g} s")
        from live import measure_live

        out.goals += measure_live(state, root, LIVE_RATE, duration, procs)
    if args.profile_worker:
        out.notes.append("NOTE: the first worker ran under cProfile; its rates are slowed.")
        out.notes.append(summary(args.profile_worker, first.n))
    if args.phases:
        log("timing the worker's phases in-process")
        settings = Settings(redis_url=env["DEMANDMON_REDIS_URL"])
        times = measure_phases(first.events, first.partition_of, settings, settings.redis_url)
        out.notes.append(phase_table(times, first.worker.steady_cpu_us(first.n)))


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    quick = args.quick
    args.events = args.events or (30_000 if quick else 200_000)
    args.days = args.days or (7.0 if quick else 70.0)
    args.year_events = args.year_events or (60_000 if quick else 1_000_000)
    if not quick and args.only == _parser().get_default("only"):
        args.compare_sizes = True
    if min(args.events, args.partitions, args.year_events) < 1 or args.days <= 0:
        print("events and partitions must be positive, days above zero", file=sys.stderr)
        return 2
    interrupt_on_signals()
    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="demandmon-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    out = Outcome()
    keep = False
    try:
        log(f"starting a private stack under {root}")
        state = control.up(root, STACK_NAME, scrape_interval=SCRAPE_INTERVAL)
        measure_all(args, state, root, out, procs)
        keep = args.keep_stack
    except KeyboardInterrupt:
        log("interrupted; cleaning up")
        return 130
    except Exception:
        # The private stack's folder goes below, its service logs with it: keep their tails.
        for service_log in sorted(root.glob("*/logs/*.log")):
            tail = service_log.read_text(errors="replace").splitlines()[-15:]
            log(f"{service_log.name}, last lines:\n" + "\n".join(tail))
        raise
    finally:
        for proc in procs:
            stop_child(proc)
        if keep:
            stop = f".venv/bin/demandmon stack down --dir {root} --name {STACK_NAME} --purge"
            log(f"stack kept; stop it with: {stop}")
        else:
            control.down(root, STACK_NAME, purge=True)
            shutil.rmtree(root, ignore_errors=True)
    print(table(out.results))
    print(goal_lines(out.goals, out.skipped))
    for note in out.notes:
        print(note)
    print(wall_time_line(started))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
