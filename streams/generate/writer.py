"""Write events as JSON Lines: gzip when the file name ends ``.gz``; byte-identical output
for the same events (no timestamp or file name in the gzip header)."""

from __future__ import annotations

import gzip
import io
import json
import os
from collections.abc import Iterable
from pathlib import Path

COMPRESS_LEVEL = 6


def _lines(events: Iterable[dict[str, object]]) -> Iterable[bytes]:
    for event in events:
        yield (json.dumps(event, separators=(",", ":")) + "\n").encode()


def write_jsonl(path: str | Path, events: Iterable[dict[str, object]]) -> int:
    """Write ``events`` to ``path`` (atomically: a temporary file renamed into place);
    returns the number of events written. Raises OSError when the path is unwritable."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp")
    count = 0
    try:
        with open(tmp, "wb") as raw:
            out: io.BufferedIOBase = raw
            if target.name.endswith(".gz"):
                out = gzip.GzipFile(
                    filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=COMPRESS_LEVEL
                )
            try:
                for line in _lines(events):
                    out.write(line)
                    count += 1
            finally:
                if out is not raw:
                    out.close()
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return count
