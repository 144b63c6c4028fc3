"""Files only their owner can read, created that way.

A secret is never written to a file that someone else could open first or that is widened
afterwards: every private file is created with ``os.open(O_CREAT | O_EXCL | O_WRONLY,
0o600)`` and every private folder with ``os.mkdir(path, 0o700)``; nothing here calls
chmod. A file that must change (a stack's ``state.json``) is written to a fresh private
file beside it and renamed over the old one.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
PUBLIC_FILE = 0o644


class SecretsError(RuntimeError):
    """A one-line, user-facing failure naming the file at fault."""


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def private_dir(path: Path) -> Path:
    """``path`` as a folder only its owner can open: created with mode 0700, or checked
    (owner, mode, not a symlink) when it exists. Its parents are created as usual."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(path, PRIVATE_DIR)
    except FileExistsError:
        info = path.lstat()
        if not stat.S_ISDIR(info.st_mode):
            raise SecretsError(f"{path}: exists and is not a folder") from None
        if info.st_uid != os.geteuid():
            raise SecretsError(f"{path}: belongs to another user") from None
        if stat.S_IMODE(info.st_mode) & 0o077:
            raise SecretsError(
                f"{path}: others may open it (mode {stat.S_IMODE(info.st_mode):04o}); "
                "remove it or make it 0700"
            ) from None
    return path


def check_private_file(path: Path) -> None:
    """Refuse an existing secret file that others may read or that is a symlink."""
    info = path.lstat()
    if not stat.S_ISREG(info.st_mode):
        raise SecretsError(f"{path}: is not a regular file")
    if info.st_uid != os.geteuid():
        raise SecretsError(f"{path}: belongs to another user")
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise SecretsError(
            f"{path}: others may read it (mode {stat.S_IMODE(info.st_mode):04o}); "
            "remove it or make it 0600"
        )


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` exclusively with ``mode`` and write ``data``; FileExistsError when it
    exists. Written under a temporary name first and linked into place, so the file is
    either absent or complete, never half-written."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, mode)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.link(tmp, path)  # fails with FileExistsError when path exists: never replaced
    finally:
        tmp.unlink(missing_ok=True)


def create_private(path: Path, data: str | bytes) -> bool:
    """Create a 0600 file holding ``data``; keep it when it exists (returns False then,
    after checking that it is still private)."""
    raw = data.encode() if isinstance(data, str) else data
    try:
        _write_new(path, raw, PRIVATE_FILE)
    except FileExistsError:
        check_private_file(path)
        return False
    return True


def create_public(path: Path, data: str | bytes) -> bool:
    """Create a 0644 file (a certificate); keep it when it exists (returns False then)."""
    raw = data.encode() if isinstance(data, str) else data
    try:
        _write_new(path, raw, PUBLIC_FILE)
    except FileExistsError:
        return False
    return True


def replace_private(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` (0600), replacing it atomically when it exists: the new
    content goes to a fresh 0600 file that is renamed over the old one."""
    raw = data.encode() if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, PRIVATE_FILE)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(raw)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_secret(path: Path) -> str:
    """The text of a secret file, stripped; refused when others may read the file."""
    check_private_file(path)
    return path.read_text().strip()


def file_mode(path: Path) -> int:
    """The permission bits of ``path`` (for checks and tests)."""
    return _mode(path)
