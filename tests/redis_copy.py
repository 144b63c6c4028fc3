"""Take an older copy of a running Redis's data, and put it back while Redis is down.

For the stack's Redis 7.0 with ``appendonly yes``. At start-up such a Redis loads its
data only from the multi-part append-only file in ``<dir>/<appenddirname>`` (a manifest
naming one base file, RDB-format by default, and the incremental AOF files written since);
a ``dump.rdb`` beside it is ignored (checked on 7.0.15: with the folder gone and a fresh
``SAVE``d ``dump.rdb`` in place, Redis starts EMPTY and writes a new empty AOF, so
``SAVE`` + ``dump.rdb`` is not a way to restore). A copy of the folder is the whole state:

1. ``take_copy`` asks for ``BGREWRITEAOF`` and waits until it has finished (a new base is
   written and the manifest names it; the incremental file starts empty), so the copy is
   small and no rewrite is swapping files while we read them;
2. it then pauses writes (``CLIENT PAUSE ... WRITE``, which holds back ``EVALSHA`` too),
   waits until the AOF buffer is empty (``aof_buffer_length`` 0: with ``appendfsync
   everysec`` Redis may hold a write back for up to 2 s while an fsync is pending), copies
   the folder and unpauses. A copy reads the page cache, so what was written is copied
   whether or not it was fsynced yet, and nothing half-written can be copied.
3. ``restore_copy``, called while Redis is stopped, replaces the folder with the copy; the
   next start loads the older state (what a failover to a lagging replica, or an fsync
   loss, looks like to the worker).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import redis

REWRITE_TIMEOUT_S = 60.0


def _persistence(client: redis.Redis) -> dict[str, Any]:
    info: dict[str, Any] = client.info("persistence")
    return info


def aof_dir(client: redis.Redis) -> Path:
    """Where this Redis keeps its multi-part AOF (``dir`` / ``appenddirname``)."""
    data_dir = str(client.config_get("dir")["dir"])
    name = str(client.config_get("appenddirname")["appenddirname"])
    return Path(data_dir) / name


def rewrite_aof(client: redis.Redis, timeout_s: float = REWRITE_TIMEOUT_S) -> None:
    """BGREWRITEAOF, and wait until that rewrite (not an earlier one) has finished."""
    deadline = time.monotonic() + timeout_s
    while int(_persistence(client)["aof_rewrite_in_progress"]):  # one already running
        if time.monotonic() > deadline:
            raise AssertionError("an earlier AOF rewrite did not finish")
        time.sleep(0.05)
    before = int(_persistence(client)["aof_rewrites"])
    client.bgrewriteaof()
    while True:
        p = _persistence(client)
        done = (
            int(p["aof_rewrites"]) > before
            and not int(p["aof_rewrite_in_progress"])
            and not int(p["aof_rewrite_scheduled"])
        )
        if done:
            if p["aof_last_bgrewrite_status"] != "ok":
                raise AssertionError(f"BGREWRITEAOF failed: {p['aof_last_bgrewrite_status']}")
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"BGREWRITEAOF did not finish within {timeout_s:.0f} s")
        time.sleep(0.05)


def take_copy(client: redis.Redis, dest: Path, pause_ms: int = 10_000) -> Path:
    """Copy the AOF folder of the Redis behind ``client`` to ``dest`` (which must not exist)
    at one point in time; returns ``dest``. Writers wait at most for the copy itself."""
    source = aof_dir(client)
    rewrite_aof(client)
    client.client_pause(pause_ms, all=False)  # CLIENT PAUSE <ms> WRITE
    try:
        deadline = time.monotonic() + pause_ms / 2000
        while int(_persistence(client)["aof_buffer_length"]) and time.monotonic() < deadline:
            time.sleep(0.01)
        shutil.copytree(source, dest)
    finally:
        client.client_unpause()
    manifest = [p for p in dest.iterdir() if p.name.endswith(".manifest")]
    assert manifest, f"no AOF manifest was copied from {source}"
    return dest


def restore_copy(copy: Path, target: Path) -> None:
    """Put ``copy`` in place of the AOF folder ``target``. Redis must be stopped."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(copy, target)
    stray = target.parent / "dump.rdb"  # never loaded with appendonly yes; no confusion
    if stray.exists():
        stray.unlink()
