"""What the benchmark prints: one column per run size, then the verdict and what it means."""

from __future__ import annotations

from dataclasses import dataclass

from events import BenchEvents
from goals import Goal, not_measured
from measure import Memory, WorkerRun
from raw import RawRun

YEAR_EVENTS = 25_000_000  # a year of Met-scale demand, in events
PEAK_CALLS_PER_DAY = 10_000
EVENTS_PER_CALL = 6
RETENTION_DAYS = 35
TARGET_RATIO = 0.3  # issue 11: at least 0.3 x min(raw consume, raw Lua)
# 2N events over 2D days against N over D, both past the horizon: bounded is about 1.
MEMORY_RATIO = 1.25


@dataclass
class SizeResult:
    events: BenchEvents
    partition_of: list[int]  # each event's partition, as the producer chose it
    partitions: int
    batch_max: int
    produce_s: float
    worker: WorkerRun
    raw_a: RawRun
    raw_b: RawRun
    used_before: int
    used_after: int
    keyspace: Memory

    @property
    def n(self) -> int:
        return len(self.events)

    @property
    def e2e(self) -> float:
        return self.worker.rate(self.n)

    @property
    def limit(self) -> float:
        return min(self.raw_a.rate(self.n), self.raw_b.rate(self.n))


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


def _rate(n: float) -> str:
    return f"{n:,.0f} ev/s"


def rows(r: SizeResult) -> list[tuple[str, str]]:
    w, n, mem = r.worker, r.n, r.keyspace
    per_event = mem.bytes / mem.seen if mem.seen else float("nan")
    applied = w.meta.get("applied", 0)
    other = {k: v for k, v in w.meta.items() if k != "applied" and v}
    return [
        ("events / incidents / days", f"{n:,} / {r.events.incidents:,} / {r.events.days:g}"),
        ("partitions / batch", f"{r.partitions} / {r.batch_max}"),
        ("mean message size", f"{r.events.payload_bytes / n:,.0f} B"),
        ("produce (acks=all)", f"{r.produce_s:,.1f} s = {_rate(n / r.produce_s)}"),
        ("worker start-up", f"{w.startup_s:,.1f} s (first {w.first_count:,} events)"),
        ("end-to-end to exact Redis", f"{w.total_s:,.1f} s = {_rate(r.e2e)}"),
        ("steady state (excl. start-up)", _rate(w.steady_rate(n))),
        ("raw A: aiokafka + json.loads", _rate(r.raw_a.rate(n))),
        ("raw B: Lua dedupe + count", _rate(r.raw_b.rate(n))),
        ("end-to-end / min(A, B)", f"{r.e2e / r.limit:.2f}"),
        ("steady / min(A, B)", f"{w.steady_rate(n) / r.limit:.2f}"),
        ("Redis meta applied", f"{applied:,}" + (f"  {other}" if other else "")),
        ("worker CPU", f"{w.worker_cpu_s:,.1f} s ({w.worker_cpu_s / w.total_s:.0%} of wall)"),
        ("  after start-up, per event", f"{w.steady_cpu_us(n):,.0f} us"),
        ("apply script in Redis", f"{w.script_s:,.1f} s in {w.script_calls:,} calls"),
        ("Redis / Kafka process CPU", f"{w.redis_cpu_s:,.1f} s / {w.kafka_cpu_s:,.1f} s"),
        ("worker peak RSS (VmHWM)", f"{w.peak_rss_kb / 1024:,.0f} MiB"),
        ("Redis used_memory before", _mb(r.used_before)),
        ("Redis used_memory after", f"{_mb(r.used_after)} (+{_mb(r.used_after - r.used_before)})"),
        ("run key-space (MEMORY USAGE)", f"{_mb(mem.bytes)} in {mem.keys:,} keys"),
        ("  per shard", _mb(mem.bytes / r.partitions)),
        ("  event ids / incidents held", f"{mem.seen:,} / {mem.incidents:,}"),
        ("  bytes per held event", f"{per_event:,.0f} B"),
    ]


def table(results: list[SizeResult]) -> str:
    columns = [rows(r) for r in results]
    labels = [label for label, _ in columns[0]]
    width = max(len(label) for label in labels)
    col_w = [max(len(v) for _, v in col) for col in columns]
    lines = []
    for i, label in enumerate(labels):
        cells = [col[i][1].ljust(w) for col, w in zip(columns, col_w, strict=True)]
        lines.append(f"{label.ljust(width)} | " + " | ".join(cells).rstrip())
    rule = "-" * max(len(line) for line in lines)
    return "\n".join([rule, *lines, rule])


def worker_goals(results: list[SizeResult]) -> tuple[list[Goal], list[str], list[str]]:
    """The worker and memory goals (met or not, and those not measured), and the figures
    that follow from the first run."""
    r = results[0]
    steady = r.worker.steady_rate(r.n) / r.limit
    goals = [
        Goal(
            "worker end to end to exact Redis / min(raw consume, raw Lua)",
            r.e2e / r.limit,
            TARGET_RATIO,
            "x",
            note=f"{_rate(r.e2e)} vs raw consume {_rate(r.raw_a.rate(r.n))}, raw Lua "
            f"{_rate(r.raw_b.rate(r.n))}; steady state (start-up left out) {steady:.2f}x",
        )
    ]
    skipped = []
    if len(results) > 1:
        a, b = results[0], results[1]
        goals.append(
            Goal(
                "memory bound: Redis key-space for 2N events over 2D days / N over D",
                b.keyspace.bytes / a.keyspace.bytes,
                MEMORY_RATIO,
                "x",
                at_least=False,
                note=f"{_mb(a.keyspace.bytes)} for {a.n:,} events over {a.events.days:g} days, "
                f"{_mb(b.keyspace.bytes)} for {b.n:,} over {b.events.days:g} days (about 1: "
                f"pruning holds state to the {RETENTION_DAYS}-day horizon; 2: unbounded)",
            )
        )
    else:
        skipped.append(not_measured("memory bound", "one run size (use --compare-sizes)"))
    peak_day = PEAK_CALLS_PER_DAY * EVENTS_PER_CALL / 86400
    per_event = r.keyspace.bytes / r.keyspace.seen if r.keyspace.seen else float("nan")
    held = YEAR_EVENTS / 365 * RETENTION_DAYS
    notes = [
        f"live peak {PEAK_CALLS_PER_DAY:,} calls/day x {EVENTS_PER_CALL} events = "
        f"{peak_day:.2f} ev/s: headroom x{r.e2e / peak_day:,.0f}",
        f"Redis for a full {RETENTION_DAYS}-day horizon at Met scale (~{held / 1e6:.1f} M "
        f"events held, {per_event:,.0f} B each): ~{_mb(held * per_event)}",
    ]
    return goals, skipped, notes
