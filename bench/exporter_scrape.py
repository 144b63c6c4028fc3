"""The exporter under test and what is timed against it: `demandmon exporter` as a child
process, /metrics fetched as Prometheus fetches it, and the bare Redis read of every hash a
cold scrape reads (the baseline the scrape times are compared with, in the same run)."""

from __future__ import annotations

import gzip
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import redis
from exporter_load import SOURCES

from demandmon.state import keys
from demandmon.state.windows import WINDOWS, window_buckets
from deploy.stack.procs import free_port, stop_child
from schemas.vocabulary import LIVE_SOURCE

# What Prometheus sends (OpenMetrics preferred, gzip).
PROMETHEUS_HEADERS = {
    "Accept": "application/openmetrics-text;version=1.0.0;q=0.5,"
    "application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,"
    "*/*;q=0.2",
    "Accept-Encoding": "gzip",
}
START_S = 60.0


class Exporter:
    """`demandmon exporter` run from ``tree`` (this checkout, or another one's files) on a
    free port, with ``env`` (the stack's endpoints and the key prefix); the process is put
    in ``procs`` as soon as it exists and taken out once stopped."""

    def __init__(
        self, tree: Path, env: dict[str, str], log_path: Path, procs: list[subprocess.Popen[bytes]]
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/metrics"
        self.procs = procs
        code = "import sys; from demandmon.cli import main; sys.exit(main(sys.argv[1:]))"
        cmd = [sys.executable, "-c", code, "exporter", "--port", str(self.port)]
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                cmd,
                cwd=tree,
                env={**env, "PYTHONPATH": str(tree)},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        procs.append(self.proc)
        self.log_path = log_path

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_S
        health = f"http://127.0.0.1:{self.port}/healthz"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the exporter exited at start (log: {self.log_path})")
            try:
                with urllib.request.urlopen(health, timeout=2):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"the exporter did not answer within {START_S:.0f} s")

    def stop(self) -> None:
        stop_child(self.proc)
        if self.proc in self.procs:
            self.procs.remove(self.proc)


def scrape(url: str) -> tuple[float, float, float, str]:
    """One GET as Prometheus makes it, timed to the last byte: (seconds, wall clock at the
    start and at the end, the body unzipped)."""
    request = urllib.request.Request(url, headers=PROMETHEUS_HEADERS)
    wall, started = time.time(), time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as response:
        body = response.read()
        zipped = response.headers.get("Content-Encoding") == "gzip"
    took = time.perf_counter() - started
    return took, wall, time.time(), (gzip.decompress(body) if zipped else body).decode()


def pct(values: list[float], q: float) -> float:
    """The nearest-rank quantile (of 20 values, p95 is the second slowest)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


@dataclass
class Timing:
    name: str
    times: list[float]  # seconds

    @property
    def p50(self) -> float:
        return statistics.median(self.times)

    @property
    def p95(self) -> float:
        return pct(self.times, 0.95)


# The bare read: per shard one script that HGETALLs every hash a scrape reads and answers
# with the number of fields, so the time is Redis reading them, nothing summed or sent.
BARE_LUA = """
local n = 0
for i = 1, #ARGV do n = n + #redis.call('HGETALL', KEYS[1] .. ARGV[i]) end
return n
"""


def scrape_keys(client: redis.Redis, prefix: str, now_s: float) -> dict[str, list[str]]:
    """Per shard key prefix, every hash key (after the prefix) a cold scrape reads: each
    window's buckets (once), ``all``, ``now`` and ``meta``."""
    out: dict[str, list[str]] = {}
    for source in SOURCES:
        parts = sorted(int(p) for p in client.smembers(keys.partitions(prefix, source)))
        bases = [keys.shard(prefix, source, p) for p in parts]
        wms = [int(w) for b in bases if (w := client.hget(b + keys.META, "wm")) is not None]
        end = now_s if source == LIVE_SOURCE or not wms else max(wms) / 1000
        names = {"all", "now", keys.META}
        for hours in WINDOWS.values():
            b = window_buckets(end, hours)
            names |= {f"h:{h}" for h in b.hours} | {f"d:{d}" for d in b.days}
        for base in bases:
            out[base] = sorted(names)
    return out


def bare_baseline(client: redis.Redis, names: dict[str, list[str]], rounds: int) -> Timing:
    """``rounds`` bare reads, each one pipelined round trip of one script call per shard."""
    script = client.register_script(BARE_LUA)
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        pipe = client.pipeline(transaction=False)
        for base, hashes in names.items():
            script(keys=[base], args=hashes, client=pipe)
        pipe.execute()
        times.append(time.perf_counter() - started)
    return Timing("bare read (HGETALL in Lua)", times)
