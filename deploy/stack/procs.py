"""Local processes: free ports, detached start, readiness polling, exact stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path


class StackError(RuntimeError):
    """A one-line, user-facing failure naming the service and its log."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def spawn(
    argv: Sequence[str], log_path: Path, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a process in its own session so it outlives this CLI."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
    return proc


Marker = tuple[str, ...]


def stop_child(proc: subprocess.Popen[bytes], grace_s: float = 30.0) -> None:
    """Stop a child we started and still hold: SIGTERM, then SIGKILL after the grace."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def alive(pid: int, marker: Marker) -> bool:
    """True when pid runs and its command line holds one of the ``marker`` strings (guards
    against pid reuse)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    if not any(m.encode() in cmdline for m in marker):
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def stop(pid: int, marker: Marker, grace_s: float = 15.0) -> None:
    """SIGTERM, then SIGKILL after the grace period; only if the pid is still ours."""
    if not alive(pid, marker):
        return
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not alive(pid, marker):
            return
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    while alive(pid, marker):
        time.sleep(0.05)


def wait_until(
    ready: Callable[[], bool],
    *,
    service: str,
    proc: subprocess.Popen[bytes],
    log_path: Path,
    timeout_s: float,
) -> None:
    # Our own child: poll() is exact, where /proc's cmdline is briefly empty after exec.
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StackError(f"{service} exited during start-up (log: {log_path})")
        try:
            if ready():
                return
        except Exception:
            pass
        time.sleep(0.25)
    raise StackError(f"{service} did not answer within {timeout_s:.0f} s (log: {log_path})")
