"""Exporter scrape speed (issue 11): a /metrics scrape of at most 200 ms with 20 sources.

    .venv/bin/python bench/exporter_speed.py [--quick] [--scrapes 20] [--stack NAME]
        [--prefix xb] [--reload] [--drop] [--tree DIR] [--profile P --seed S --keep-every K]

The stack: ``--stack NAME``, else the one the DEMANDMON_* variables name (``set -a;
. .stack/NAME/endpoints.env; set +a``), else a private one started for the run and removed
after it. Redis gets 20 sources under its own key prefix (bench/exporter_load.py: ``live``
and 19 replays of one generated stream, met-nov-2023 seed 1, ~277k events each; --quick:
1 in 3 incidents of categories-2023, ~30k events). A later run with the same ``--prefix``
reuses that state (``--reload`` rebuilds it). From bench/throughput.py: measure_exporter.

Then ``demandmon exporter`` runs from ``--tree`` (this checkout by default) and each
scenario times ``--scrapes`` GETs of /metrics as Prometheus makes them (OpenMetrics, gzip):

* ``idle``: nothing written between scrapes (19 finished replays, a quiet live feed);
* ``live``: before each scrape 50 new live events are applied (a busy feed);
* ``busy``: that, and every shard of one replay marked written, as if being replayed;
* ``all 20 written``: every shard of every source marked written before each scrape (the
  worst case), as a batch of events in its latest hour would leave it
  (exporter_load.mark_written): its last-write time moves, so the exporter reads its
  totals, gauges, oldest open incidents and past-target counts again, and so do the
  versions apply.lua keeps of its newest two hour buckets and its newest day bucket, so
  those buckets are read again and its windows added up again; its other buckets are
  reused, as after any such write. The first (cold) scrape, printed too, is the case
  where nothing at all is reused.

--quick runs ``busy`` and ``all 20 written`` with 5 scrapes each. The bare baseline, in the
same run: Redis reading every hash a cold scrape reads, HGETALL in one script per shard
answering a count only, all in one pipelined round trip. After each scenario the last
scrape's figures of r01, r19 and live are checked against the oracle (bench/exporter_check.py).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import redis
from exporter_check import Exactness, series_count
from exporter_load import (
    REPO,
    SOURCES,
    apply_messages,
    drop_prefix,
    live_offsets,
    load,
    log,
    mark_written,
    messages,
)
from exporter_report import (
    ALL,
    BUSY,
    FULL,
    IDLE,
    LIVE,
    PER_SCRAPE,
    QUICK,
    RUNNING,
    Options,
    Result,
    goals,
    report,
)
from exporter_scrape import Exporter, Timing, bare_baseline, scrape, scrape_keys
from goals import Goal, interrupt_on_signals, wall_time_line

from demandmon.settings import Settings
from demandmon.stacks import STACK_DIR_VARIABLE, find_named_stack
from demandmon.state.store import StoreConfig
from deploy.stack import control
from deploy.stack.layout import StackLayout, StackState
from schemas.vocabulary import LIVE_SOURCE
from tests.sync_store import SyncStateStore


def run(
    client: redis.Redis,
    env: dict[str, str],
    prefix: str,
    workdir: Path,
    opts: Options,
    procs: list[subprocess.Popen[bytes]],
) -> Result:
    """Load the 20 sources, start the exporter, time the scenarios; the exporter stopped."""
    live_scenarios = sum(s in (LIVE, BUSY) for s in opts.scenarios)
    exporter = Exporter(
        opts.tree.resolve(),
        {**env, "DEMANDMON_KEY_PREFIX": prefix},
        workdir / f"{prefix}.log",
        procs,
    )
    try:
        loaded = load(
            client,
            prefix,
            opts.profile,
            opts.seed,
            opts.partitions,
            PER_SCRAPE * opts.scrapes * live_scenarios,
            keep_every=opts.keep_every,
            reload=opts.reload,
        )
        names = scrape_keys(client, prefix, time.time())
        log(f"{len(SOURCES)} sources, a cold scrape reads {sum(map(len, names.values())):,} hashes")
        log("the oracle's recount, to check the figures by")
        exact = Exactness(loaded.events, loaded.live_events, live=loaded.built_s > 0)
        exporter.wait_ready()
        first, _, _, text = scrape(exporter.url)
        result = Result(
            opts,
            len(loaded.events),
            sum(len(v) for v in names.values()),
            len(text),
            series_count(text),
            Timing("first scrape (cold)", [first]),
            Timing("", []),
            checked=exact.checked,
        )
        store = SyncStateStore(client, StoreConfig(prefix, Settings().retention_s))
        live_msgs = messages(
            loaded.live_next, LIVE_SOURCE, opts.partitions, live_offsets(client, prefix)
        )
        used = 0

        def live_batch() -> None:
            nonlocal used
            apply_messages(store, live_msgs[used : used + PER_SCRAPE])
            exact.applied(loaded.live_next[used : used + PER_SCRAPE])
            used += PER_SCRAPE

        def busy() -> None:
            live_batch()
            mark_written(client, prefix, [RUNNING])

        before: dict[str, Callable[[], None]] = {
            IDLE: lambda: None,
            LIVE: live_batch,
            BUSY: busy,
            ALL: lambda: mark_written(client, prefix, SOURCES),
        }
        for name in opts.scenarios:
            log(f"scenario {name}: {opts.scrapes} scrapes")
            times = []
            for _ in range(opts.scrapes):
                before[name]()
                took, start_s, end_s, text = scrape(exporter.url)
                times.append(took)
            result.scenarios[name] = Timing(name, times)
            if bad := exact.wrong(text, start_s, end_s):
                result.wrong[name] = bad
        result.baseline = bare_baseline(client, names, max(5, opts.scrapes // 2))
        return result
    finally:
        exporter.stop()


def measure_exporter(
    state: StackState, root: Path, quick: bool, procs: list[subprocess.Popen[bytes]]
) -> list[Goal]:
    """The scrape goals on a running plain stack (single Redis), under a fresh key prefix
    that is removed at the end; the exporter started is in ``procs`` while it runs."""
    if state.secure or state.redis_cluster:
        raise ValueError("measure_exporter runs on a plain stack with a single Redis")
    stack = StackLayout(root, state.name).dir
    env = {**os.environ, **state.endpoints(), STACK_DIR_VARIABLE: str(stack)}
    client = redis.Redis.from_url(env["DEMANDMON_REDIS_URL"])
    prefix = f"xb{uuid.uuid4().hex[:8]}"
    try:
        result = run(client, env, prefix, root, QUICK if quick else FULL, procs)
    finally:
        drop_prefix(client, prefix)
        client.close()
    return goals(result)


def _stack_env(name: str | None) -> dict[str, str] | None:
    """The named stack's endpoints, else the environment's when it names a Redis."""
    if name is not None:
        folder = find_named_stack(name)
        pairs = (line.split("=", 1) for line in (folder / "endpoints.env").read_text().splitlines())
        return {
            **os.environ,
            **dict(p for p in pairs if len(p) == 2),
            STACK_DIR_VARIABLE: str(folder),
        }
    return dict(os.environ) if "DEMANDMON_REDIS_URL" in os.environ else None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench/exporter_speed.py", description=__doc__)
    p.add_argument("--quick", action="store_true", help="a thinned stream, 2 scenarios, 5 scrapes")
    p.add_argument("--scrapes", type=int, default=None, help="scrapes per scenario")
    p.add_argument("--stack", default=None, help="use this running (plain) stack")
    p.add_argument("--prefix", default="xb", help="Redis key prefix of the state")
    p.add_argument("--reload", action="store_true", help="rebuild the state")
    p.add_argument("--drop", action="store_true", help="remove the state at the end")
    p.add_argument("--tree", type=Path, default=REPO, help="run the exporter from here")
    p.add_argument("--profile", default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--keep-every", type=int, default=None, help="1 in K incidents")
    return p


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    base = QUICK if args.quick else FULL
    given = {"scrapes": args.scrapes, "profile": args.profile, "seed": args.seed}
    given["keep_every"] = args.keep_every
    opts = replace(
        base,
        tree=args.tree,
        reload=args.reload,
        **{k: v for k, v in given.items() if v is not None},
    )
    interrupt_on_signals()
    started = time.monotonic()
    procs: list[subprocess.Popen[bytes]] = []
    work = Path(tempfile.mkdtemp(prefix="demandmon-exporterbench-"))
    private = "exporterbench"
    try:
        env = _stack_env(args.stack)
        if env is None:
            log(f"starting a private stack under {work}")
            state = control.up(work, private, scrape_interval="15s")
            env = {
                **os.environ,
                **state.endpoints(),
                STACK_DIR_VARIABLE: str(StackLayout(work, private).dir),
            }
            opts = replace(opts, reload=True)
        client = redis.Redis.from_url(env["DEMANDMON_REDIS_URL"])
        try:
            result = run(client, env, args.prefix, work, opts, procs)
        finally:
            if args.drop:
                drop_prefix(client, args.prefix)
    except KeyboardInterrupt:
        log("interrupted; cleaning up")
        return 130
    finally:
        control.down(work, private, purge=True)
        shutil.rmtree(work, ignore_errors=True)
    print(report(result))
    print(wall_time_line(started))
    return 1 if result.wrong else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
