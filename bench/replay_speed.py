"""Replay producer speed: `demandmon replay` against a bare producer, same messages, same run.

    .venv/bin/python bench/replay_speed.py [--events 300000] [--runs 3] [--quick]
        [--stack NAME] [--levers]

Issue 11's goal: the replay reaches at least 0.5 x a bare producer sending the same
messages in the same run. Each run, on fresh topics of the same partition count
(bench/replay_measure.py):

- bare: the replay's own producer (streams.replay.kafka_client.replay_producer, so the
  same client and settings) sends the replay's messages (same keys, values and source
  header) from memory, with no file reading; warmed first (connected, its idempotent
  producer id acquired), then timed from the first send until the flush is done. It runs
  just before and just after the replay, and its rate is over both sends.
- replay: the real command, streams.replay.cli.main, in this process on the same file
  (progress lines on, as by default); timed from the call to its return, so it includes
  the scan of the file for the progress total, the topic check, connecting, registering
  the source, reading, sending and the final flush. Only Python's start-up is left out.
  Its send phase alone is the rate its summary line prints; the scan is also timed apart.

Both topics are then checked to hold every event. The file is the generated stream
(met-nov-2023, further seeds appended when more events are asked for than one month
holds; --quick: 80,000 events of categories-2023, 5 runs), gzipped as `demandmon
generate` writes it. ``--levers`` also times bare producers of other clients and settings
(bench/replay_levers.py). Without ``--stack`` the benchmark starts a private stack under
/tmp and removes it at the end; with it, it uses that (plain) stack, its own topics and
Redis key prefix, and deletes them at the end. From bench/throughput.py: measure_replay.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import confluent_kafka
from goals import Goal, interrupt_on_signals, wall_time_line
from replay_levers import levers
from replay_measure import Bench, Run, Timed, log, measure_runs, replay_messages, write_stream

from demandmon.settings import get_settings
from demandmon.stacks import STACK_DIR_VARIABLE, find_named_stack
from deploy.stack import control
from deploy.stack.layout import StackLayout, StackState
from streams.replay.kafka_client import PRODUCER_CONFIG

GOAL = 0.5
SEED = 20231101


@dataclass(frozen=True)
class Options:
    events: int = 300_000
    runs: int = 3
    profile: str = "met-nov-2023"
    levers: bool = False


FULL = Options()
QUICK = Options(events=80_000, runs=5, profile="categories-2023")


@dataclass
class Result:
    options: Options
    events: int
    partitions: int
    runs: list[Run]
    levers: list[tuple[str, Timed | str]] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return statistics.median(r.ratio for r in self.runs)


def run(env: dict[str, str], work: Path, opts: Options) -> Result:
    """Write the file under ``work``, then the runs (and levers) on ``env``'s stack."""
    path = work / f"{opts.profile}.jsonl.gz"
    log(f"generating {opts.events:,} events of {opts.profile} to {path}")
    write_stream(path, opts.events, opts.profile, SEED)
    messages = replay_messages(path)
    with Bench(env) as bench:
        runs = measure_runs(bench, path, messages, opts.runs)
        lever_results = levers(bench, messages) if opts.levers else []
        partitions = get_settings().partitions
    return Result(opts, len(messages), partitions, runs, lever_results)


def goal(result: Result) -> Goal:
    runs = result.runs
    bare = statistics.median(r.bare.rate for r in runs)
    rep = statistics.median(r.replay.rate for r in runs)
    wall = statistics.median(r.replay.wall_s for r in runs)
    scan_s = statistics.median(r.scan_s for r in runs)
    send_s = result.events / statistics.median(r.replay_send_rate for r in runs)
    ratios = [r.ratio for r in runs]
    note = (
        f"replay {rep:,.0f} ev/s, bare producer {bare:,.0f} ev/s (medians; ratios "
        f"{min(ratios):.2f}-{max(ratios):.2f}); {result.events:,} events of "
        f"{result.options.profile} (gzip), {result.partitions} partitions; the replay's "
        f"{wall:.2f} s: its scan of the file ~{scan_s:.2f} s (timed apart), send phase "
        f"{send_s:.2f} s (its summary line); CPU per event: bare "
        f"{statistics.median(r.bare.cpu_us for r in runs):.1f} us, replay "
        f"{statistics.median(r.replay.cpu_us for r in runs):.1f} us"
    )
    return Goal(
        name=f"replay producer / bare producer, same messages, same run (median of {len(runs)})",
        measured=result.ratio,
        target=GOAL,
        unit="x",
        note=note,
    )


def measure_replay(
    state: StackState, root: Path, quick: bool, procs: list[subprocess.Popen[bytes]]
) -> list[Goal]:
    """The replay goal on a running plain stack, on fresh topics and a fresh key prefix,
    all deleted at the end. Everything runs in this process (``procs`` stays as it is);
    the environment is put back as it was."""
    if state.secure:
        raise ValueError("measure_replay runs on a plain stack")
    env = {**state.env("replay"), STACK_DIR_VARIABLE: str(StackLayout(root, state.name).dir)}
    work = Path(tempfile.mkdtemp(prefix="replay-file-", dir=root))
    try:
        result = run(env, work, QUICK if quick else FULL)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return [goal(result)]


def client_line() -> str:
    config = ", ".join(
        f"{k}={v}"
        for k, v in PRODUCER_CONFIG.items()
        if k in ("compression.type", "linger.ms", "batch.size", "acks", "enable.idempotence")
    )
    return (
        f"client: confluent-kafka {confluent_kafka.version()} "
        f"(librdkafka {confluent_kafka.libversion()[0]}): {config}"
    )


def report(result: Result) -> str:
    lines = [
        f"replay speed: {result.events:,} events of {result.options.profile} (generated, "
        f"gzip), {result.partitions} partitions, fresh topics per run",
        client_line(),
        "bare: the replay's producer sending the same messages from memory, just before and"
        " after the replay (rate over both)",
        "replay: `demandmon replay FILE --source ...` in process, call to return (scanning"
        " the file, connecting, registering, sending, flushing);",
        "  its send phase alone is the rate its own summary line prints; scan: timed apart",
        "",
        f"{'run':<4} {'bare ev/s':>10} {'replay ev/s':>12} {'ratio':>6}  {'verdict':<8}"
        f" {'send phase ev/s':>16} {'scan s':>7} {'bare CPU us/ev':>15} {'replay CPU us/ev':>17}",
    ]
    for n, r in enumerate(result.runs, 1):
        verdict = "met" if r.ratio >= GOAL else "NOT met"
        lines.append(
            f"{n:<4} {r.bare.rate:>10,.0f} {r.replay.rate:>12,.0f} {r.ratio:>6.2f}  "
            f"{verdict:<8} {r.replay_send_rate:>16,.0f} {r.scan_s:>7.2f} "
            f"{r.bare.cpu_us:>15.1f} {r.replay.cpu_us:>17.1f}"
        )
    lines += ["", goal(result).line()]
    if result.levers:
        chosen = statistics.median(r.bare.rate for r in result.runs)
        lines += ["", f"levers: bare producers, same messages (chosen: {chosen:,.0f} ev/s)"]
        for name, lever in result.levers:
            if isinstance(lever, str):
                lines.append(f"  {name:<62} {lever}")
            else:
                lines.append(
                    f"  {name:<62} {lever.rate:>9,.0f} ev/s  {lever.rate / chosen:5.2f} x chosen"
                )
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench/replay_speed.py", description=__doc__)
    p.add_argument("--events", type=int, default=None, help="events in the file (300,000)")
    p.add_argument("--runs", type=int, default=None, help="repetitions (3)")
    p.add_argument("--quick", action="store_true", help="80,000 events, 5 runs")
    p.add_argument("--stack", default=None, help="use this running (plain) stack")
    p.add_argument("--levers", action="store_true", help="also time the other clients")
    return p


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    opts = replace(QUICK if args.quick else FULL, levers=args.levers)
    if args.events is not None:
        opts = replace(opts, events=args.events)
    if args.runs is not None:
        opts = replace(opts, runs=args.runs)
    if opts.events < 1 or opts.runs < 1:
        print("--events and --runs must be positive", file=sys.stderr)
        return 2
    interrupt_on_signals()
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="demandmon-replaybench-"))
    private = "replaybench"
    try:
        if args.stack is not None:
            env = {STACK_DIR_VARIABLE: str(find_named_stack(args.stack))}
        else:
            log(f"starting a private stack under {work}")
            state = control.up(work, private, scrape_interval="15s")
            env = {**state.env("replay"), STACK_DIR_VARIABLE: str(StackLayout(work, private).dir)}
        result = run(env, work, opts)
    except KeyboardInterrupt:
        log("interrupted; cleaning up")
        return 130
    finally:
        control.down(work, private, purge=True)
        shutil.rmtree(work, ignore_errors=True)
    print(report(result))
    print(wall_time_line(started))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
