"""Summarise a cProfile dump of the real worker: self time by library, and our hot spots.

cProfile slows Python-heavy code (Faust's many small calls most), so read the shares,
not the absolute seconds. Coroutines count only while running, not while awaiting.
"""

from __future__ import annotations

import pstats
from collections import Counter
from pathlib import Path

# (substring of the file path, group); first match wins.
GROUPS = (
    ("/faust/", "Faust"),
    ("/mode/", "Faust"),
    ("/aiokafka/", "aiokafka / kafka-python"),
    ("/kafka/", "aiokafka / kafka-python"),
    ("/redis/", "redis-py"),
    ("/prometheus_client/", "prometheus_client (metrics)"),
    ("/json/", "json (stdlib)"),
    ("/asyncio/", "asyncio"),
    ("/agents/", "ours: agents"),
    ("/schemas/", "ours: schemas (validate)"),
    ("/demandmon/", "ours: demandmon"),
)
# Our functions whose cumulative (running, not awaiting) time is worth seeing.
HOT = (
    ("agents/consumer.py", "consumed"),
    ("agents/applier.py", "process"),
    ("agents/batch.py", "plan_batch"),
    ("schemas/message.py", "decode_event"),
    ("schemas/contract.py", "validate_event"),
    ("agents/batch.py", "event_entry"),
    ("demandmon/state/store.py", "script_args"),
    ("demandmon/state/store.py", "apply"),
)
IDLE = "<method 'poll' of 'select.epoll' objects>"


def _group(filename: str, func: str) -> str:
    if func == IDLE:
        return "idle (epoll wait: Kafka fetch / Redis reply)"
    if filename == "~":
        return "json (stdlib)" if "json" in func else "other builtins"
    for part, group in GROUPS:
        if part in filename:
            return group
    return "other Python"


def summary(path: Path, events: int) -> str:
    stats = pstats.Stats(str(path))
    table = stats.stats  # type: ignore[attr-defined]
    by_group: Counter[str] = Counter()
    hot: Counter[str] = Counter()
    for (filename, _, func), (_, _, self_s, cum_s, _) in table.items():
        by_group[_group(filename, func)] += self_s
        for suffix, name in HOT:
            if filename.endswith(suffix) and func == name:
                hot[f"{suffix}:{name}"] += cum_s
    total = sum(by_group.values())
    lines = [f"cProfile of the worker: {total:,.1f} s profiled, self time by library:"]
    for group, secs in by_group.most_common():
        lines.append(f"  {group:48} {secs:7.2f} s {secs / total:6.1%}")
    lines.append("our functions, cumulative while running (us/event):")
    for suffix, name in HOT:
        key = f"{suffix}:{name}"
        lines.append(f"  {key:48} {hot[key] / events * 1e6:7.1f}")
    lines.append("top 15 functions by self time:")
    stats.sort_stats("tottime")
    rows = sorted(table.items(), key=lambda kv: kv[1][2], reverse=True)[:15]
    for (filename, line, func), (_, calls, self_s, _, _) in rows:
        where = f"{Path(filename).parent.name}/{Path(filename).name}:{line}"
        lines.append(f"  {self_s:6.2f} s {calls:>9,} calls  {func}  ({where})")
    return "\n".join(lines)
