"""The agent: batches of raw messages -> validated entries -> one Redis round trip.

Thin by design. Decoding and validation are ours (the topic is raw bytes, so Faust has
nothing to fail on), no exception ever leaves the loop, and a batch that cannot be applied
is retried until it is: Faust acks a batch only after this body returns for it, and the
offset guard in Redis makes the retry harmless.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

from agents.batch import Consumed, Plan, plan_batch, source_of
from agents.classify import RcrpMapping
from agents.deadletter import deadletter_headers, deadletter_key, deadletter_value
from agents.metrics import WorkerMetrics
from demandmon.settings import LIVE_SOURCE, Settings
from demandmon.state.store import ApplyResult, StateStore

log = logging.getLogger("demandmon.worker")
MAX_BACKOFF_S = 5.0
T = TypeVar("T")


def consumed(event: Any) -> Consumed:
    message = event.message
    headers = message.headers or []
    if isinstance(headers, dict):
        headers = list(headers.items())
    return Consumed(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        headers=[(str(k), bytes(v or b"")) for k, v in headers],
        timestamp_ms=int(message.timestamp * 1000) if message.timestamp else None,
    )


class BatchApplier:
    def __init__(
        self,
        settings: Settings,
        store: StateStore,
        mapping: RcrpMapping,
        metrics: WorkerMetrics,
        deadletter_topic: Any,
    ) -> None:
        self.settings = settings
        self.store = store
        self.mapping = mapping
        self.metrics = metrics
        self.deadletter_topic = deadletter_topic

    async def run(self, batches: AsyncIterator[Sequence[Any]]) -> None:
        async for events in batches:
            messages = [consumed(e) for e in events]
            await self.process(messages)

    async def process(self, messages: list[Consumed]) -> None:
        plan = plan_batch(messages, self.mapping, self.settings.max_message_bytes)
        # Dead letters are delivered before the batch is applied: if we crash in between,
        # the batch is redelivered and a dead letter may repeat, but none is ever lost.
        if plan.rejections:
            await self._until_done(lambda: self._send_deadletters(plan), "sending dead letters")
        result = await self._until_done(
            lambda: self.store.apply(plan, int(time.time() * 1000)), "applying a batch"
        )
        self._count(messages, plan, result)

    async def _until_done(self, action: Callable[[], Awaitable[T]], what: str) -> T:
        """Retry with backoff until it works: skipping would lose events."""
        backoff = 0.2
        while True:
            try:
                return await action()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.metrics.apply_failures.inc()
                log.error("%s failed (%s); retrying", what, type(exc).__name__)
                # Tracebacks hold code locations only; event values never reach the log.
                log.debug("%s failure", what, exc_info=True)
                await asyncio.sleep(backoff)
                backoff = min(MAX_BACKOFF_S, backoff * 2)

    async def _send_deadletters(self, plan: Plan) -> None:
        pending = [
            await self.deadletter_topic.send(
                key=deadletter_key(rejection),
                value=deadletter_value(rejection),
                headers=deadletter_headers(rejection),
            )
            for rejection in plan.rejections
        ]
        # send() only queues; wait until the broker has every one of them.
        await asyncio.gather(*pending)

    def _count(self, messages: list[Consumed], plan: Plan, result: ApplyResult) -> None:
        done = time.time()
        m = self.metrics
        m.messages.inc(len(messages))
        m.batches.inc()
        m.applied.inc(result.applied)
        m.duplicates.inc(result.duplicate)
        m.skipped.inc(result.skipped)
        for rejection in plan.rejections:
            m.deadlettered.labels(rejection.reason).inc()
        for msg in messages:
            if msg.timestamp_ms is not None:
                kind = "live" if _is_live(msg) else "replay"
                m.latency.labels(kind).observe(max(0.0, done - msg.timestamp_ms / 1000))


def _is_live(msg: Consumed) -> bool:
    return source_of(msg.headers) == LIVE_SOURCE
