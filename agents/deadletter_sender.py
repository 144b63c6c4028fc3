"""Deliver dead letters to their topic, waiting until the broker has them, for a bounded
time: a dead-letter topic that cannot be reached must not stall the partition forever.
What cannot be delivered by the deadline is counted (and alerted on), then given up; the
refused message itself is still counted as rejected in Redis and stays on its topic."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from agents.batch import Rejection
from agents.deadletter import deadletter_headers, deadletter_key, deadletter_value
from agents.metrics import WorkerMetrics

log = logging.getLogger("demandmon.worker")
MAX_BACKOFF_S = 5.0


class Producer(Protocol):
    async def send(
        self, topic: str, value: bytes | None, key: bytes, headers: list[tuple[str, bytes]]
    ) -> Any: ...


class DeadLetterSender:
    def __init__(
        self,
        producer: Callable[[], Producer],
        topic: str,
        timeout_s: float,
        metrics: WorkerMetrics,
    ) -> None:
        self.producer = producer
        self.topic = topic
        self.timeout_s = timeout_s
        self.metrics = metrics

    async def _send_one(self, rejection: Rejection) -> None:
        delivery = await self.producer().send(
            self.topic,
            value=deadletter_value(rejection),
            key=deadletter_key(rejection),
            headers=deadletter_headers(rejection),
        )
        # send() only queues; the future resolves once the broker has the record.
        await delivery

    async def send(self, rejections: Sequence[Rejection]) -> int:
        """Deliver every dead letter, or give up on the rest at the deadline; returns how
        many were given up."""
        deadline = time.monotonic() + self.timeout_s
        pending = list(rejections)
        backoff = 0.2
        while pending:
            remaining = deadline - time.monotonic()
            if remaining > 0:
                outcomes = await asyncio.gather(
                    *(asyncio.wait_for(self._send_one(r), remaining) for r in pending),
                    return_exceptions=True,
                )
                failed = [r for r, o in zip(pending, outcomes, strict=True) if o is not None]
                for outcome in outcomes:
                    if isinstance(outcome, asyncio.CancelledError):
                        raise outcome
                if not failed:
                    return 0
                errors = {type(o).__name__ for o in outcomes if o is not None}
                log.error("sending %d dead letters failed (%s)", len(failed), ", ".join(errors))
                pending = failed
            if time.monotonic() + backoff >= deadline:
                for rejection in pending:
                    self.metrics.deadletter_failures.labels(rejection.reason).inc()
                log.error(
                    "gave up %d dead letters after %.0f s; they are counted as rejected",
                    len(pending),
                    self.timeout_s,
                )
                return len(pending)
            await asyncio.sleep(backoff)
            backoff = min(MAX_BACKOFF_S, backoff * 2)
        return 0
