"""`demandmon sources list|delete`: the bounded set of sources, `live` and the replay
sources `demandmon replay` registered (at most DEMANDMON_MAX_SOURCES in all).

`list` (role reader) prints each source with the events applied, its watermark and what
its replays recorded as sent. `delete NAME` (role admin) takes a replay source out of the
registry first, so that workers refuse its messages, then deletes every key of its state;
the exporter stops exporting it at once, so Prometheus marks its series stale.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime

import redis

from demandmon.arguments import CommandParser
from demandmon.clients import SyncRedis, redis_client, redis_failure
from demandmon.settings import Settings, settings_or_exit
from demandmon.state import keys
from demandmon.state.registry import (
    REFRESH_EVERY_S,
    Removed,
    SourceInfo,
    delete_state,
    deregister,
    has_state,
    list_sources,
    registered,
)
from schemas.vocabulary import LIVE_SOURCE, UNKNOWN_SOURCE, valid_source

PROG = "demandmon sources"
# Workers read the registry every 5 s: after this long none applies a deleted source's
# messages any more, so none writes its keys again once they are deleted.
SETTLE_S = REFRESH_EVERY_S + 2.0


def _parser() -> CommandParser:
    p = CommandParser(prog=PROG, description=__doc__)
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    ls = sub.add_parser("list", help="the sources, their events and watermarks (role reader)")
    ls.add_argument("--format", choices=["table", "json"], default="table")
    rm = sub.add_parser("delete", help="remove a replay source and all its state (role admin)")
    rm.add_argument("name", help="the replay source to delete")
    rm.add_argument(
        "--wait",
        type=float,
        default=SETTLE_S,
        help=f"seconds between deregistering and deleting, for workers to notice "
        f"(default {SETTLE_S:g}; 0 when no worker runs)",
    )
    return p


def iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    at = datetime.fromtimestamp(ms / 1000, UTC)
    return at.isoformat(timespec="milliseconds" if ms % 1000 else "seconds").replace("+00:00", "Z")


def as_json(infos: list[SourceInfo], count: int, most: int) -> str:
    doc = {
        "sources": [
            {
                "name": i.name,
                "kind": i.kind,
                "applied": i.applied,
                "watermark": iso(i.watermark_ms),
                "sent": i.sent,
            }
            for i in infos
        ],
        "count": count,
        "max": most,
    }
    return json.dumps(doc, indent=2) + "\n"


def as_table(infos: list[SourceInfo], count: int, most: int) -> str:
    head = ("source", "kind", "applied", "watermark", "sent")
    rows = [
        (
            i.name,
            i.kind,
            f"{i.applied:,}",
            iso(i.watermark_ms) or "-",
            "-" if i.sent is None else f"{i.sent:,}",
        )
        for i in infos
    ]
    widths = [max(len(r[c]) for r in [head, *rows]) for c in range(len(head))]
    lines = []
    for row in [head, *rows]:
        cells = [
            cell.rjust(w) if c in (2, 4) else cell.ljust(w)
            for c, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    lines.append(f"{count} of {most} sources")
    if any(i.kind == "unregistered" for i in infos):
        lines.append(
            "unregistered: state without a registration (not applied to, not exported); "
            "remove it with demandmon sources delete NAME"
        )
    return "\n".join(lines) + "\n"


def _list(settings: Settings, client: SyncRedis, fmt: str) -> int:
    infos = list_sources(client, settings.key_prefix)
    count = sum(1 for i in infos if i.kind != "unregistered")
    render = as_json if fmt == "json" else as_table
    sys.stdout.write(render(infos, count, settings.max_sources))
    return 0


def describe(name: str, prefix: str, removed: Removed) -> list[str]:
    """What `delete` removed, one line per kind of key."""
    parts = ", ".join(map(str, removed.partitions)) or "none"
    lines = [f"removed {removed.shard_keys:,} shard keys {prefix}:{{{name}:P}}:* (P: {parts})"]
    if removed.keys:
        lines.append("removed " + ", ".join(removed.keys))
    shared = [
        what
        for what, done in (
            (keys.sources(prefix), removed.source_entry),
            (keys.watermarks(prefix), removed.watermark),
        )
        if done
    ]
    if removed.position_fields:
        shared.append(f"{removed.position_fields} fields P:{name} of {keys.positions(prefix)}")
    if shared:
        lines.append(f"removed {name} from " + ", ".join(shared))
    return lines


def _delete(settings: Settings, client: SyncRedis, name: str, wait_s: float) -> int:
    prefix = settings.key_prefix
    was_registered = deregister(client, prefix, name)
    if not was_registered and not has_state(client, prefix, name):
        known = ", ".join(sorted(registered(client, prefix))) or "none"
        print(f"{PROG}: unknown source '{name}' (registered: {known})", file=sys.stderr)
        return 1
    if was_registered:
        print(
            f"removed {name} from {keys.registry(prefix)}: workers refuse its messages from "
            f"their next registry read (every {REFRESH_EVERY_S:g} s)"
        )
        if wait_s > 0:
            print(f"waiting {wait_s:g} s for every worker to read the registry", flush=True)
            time.sleep(wait_s)
    if name in registered(client, prefix):
        print(
            f"{PROG}: '{name}' was registered again (a replay started); its state is kept",
            file=sys.stderr,
        )
        return 1
    for line in describe(name, prefix, delete_state(client, prefix, name)):
        print(line)
    return 0


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.action == "delete":
        if args.name in (LIVE_SOURCE, UNKNOWN_SOURCE):
            why = "is always a source" if args.name == LIVE_SOURCE else "counts rejected messages"
            print(f"{PROG}: '{args.name}' {why} and cannot be deleted", file=sys.stderr)
            return 2
        if not valid_source(args.name):
            print(f"{PROG}: '{args.name}' is not a source name", file=sys.stderr)
            return 2
        if args.wait < 0:
            print(f"{PROG}: --wait must be 0 or more", file=sys.stderr)
            return 2
    settings = settings_or_exit(PROG, "admin" if args.action == "delete" else "reader")
    try:
        client = redis_client(settings)
        if args.action == "delete":
            return _delete(settings, client, args.name, args.wait)
        return _list(settings, client, args.format)
    except redis.RedisError as exc:
        print(f"{PROG}: {redis_failure(settings, exc).line}", file=sys.stderr)
        return 1
