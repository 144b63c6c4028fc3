"""Retrying what must not be skipped: applying a batch, saving positions, reading
the registry. Skipping would lose events, so the worker retries with backoff until it
works; a partition stuck here shows as growing lag on the worker's /metrics and raises
an alert."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from prometheus_client import Counter

log = logging.getLogger("demandmon.worker")
MAX_BACKOFF_S = 5.0
T = TypeVar("T")


async def until_done(action: Callable[[], Awaitable[T]], what: str, failures: Counter) -> T:
    """Run ``action`` until it works, counting each failure in ``failures``."""
    backoff = 0.2
    while True:
        try:
            return await action()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failures.inc()
            log.error("%s failed (%s); retrying", what, type(exc).__name__)
            # Tracebacks hold code locations only; event values never reach the log.
            log.debug("%s failure", what, exc_info=True)
            await asyncio.sleep(backoff)
            backoff = min(MAX_BACKOFF_S, backoff * 2)
