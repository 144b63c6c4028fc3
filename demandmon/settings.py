"""One validated settings object, read from the environment (prefix ``DEMANDMON_``)."""

from __future__ import annotations

import re
import sys
from functools import lru_cache

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,39}$")
LIVE_SOURCE = "live"


class Settings(BaseSettings):
    """Where the services are and how the pipeline behaves.

    Defaults fit the local stack: ``demandmon stack up`` writes the endpoints it chose to
    ``.stack/<name>/endpoints.env`` and the other commands read them from there when the
    corresponding variables are not set.
    """

    # The default local stack writes its chosen endpoints here; real variables win.
    model_config = SettingsConfigDict(
        env_prefix="DEMANDMON_", extra="ignore", env_file=".stack/default/endpoints.env"
    )

    kafka_bootstrap: str = "127.0.0.1:9092"
    redis_url: str = "redis://127.0.0.1:6379/0"
    prometheus_url: str = "http://127.0.0.1:9090"
    alertmanager_url: str = "http://127.0.0.1:9093"

    events_topic: str = "cad.incident-events.v1"
    deadletter_topic: str = "cad.incident-events.v1.deadletter"
    partitions: int = Field(default=12, ge=1, le=1024)
    consumer_group: str = "demandmon-worker"
    key_prefix: str = Field(default="dm", pattern=r"^[a-z0-9_]{1,32}$")

    worker_web_port: int = Field(default=6066, ge=1, le=65535)
    exporter_port: int = Field(default=9464, ge=1, le=65535)
    batch_max: int = Field(default=2000, ge=1, le=100_000)
    batch_within_s: float = Field(default=0.2, gt=0, le=30)

    retention_s: int = Field(default=35 * 86400, ge=3600)
    max_future_s: int = Field(default=300, ge=0)
    max_message_bytes: int = Field(default=64 * 1024, ge=1024, le=1024 * 1024)

    # Where the worker's web server (/metrics) listens: 0.0.0.0 in a container, so that
    # Prometheus on another host can scrape it.
    worker_web_bind: str = Field(default="127.0.0.1", pattern=r"^[A-Za-z0-9.:_-]{1,253}$")
    # Faust's own data folder (no tables are kept there; it must merely be writable).
    worker_data_dir: str = ""
    # Kafka static membership: a restarted worker with the same id takes its partitions
    # back at once instead of waiting out the session. Unique per worker; empty: dynamic.
    worker_instance_id: str = Field(default="", pattern=r"^[A-Za-z0-9._-]{0,200}$")
    # How soon the group gives a dead worker's partitions to the others.
    kafka_session_timeout_s: float = Field(default=10.0, ge=6, le=300)
    # The events topic must keep at least the state horizon, so Redis can be rebuilt
    # from Kafka (-1: keep forever).
    events_retention_s: int = Field(default=42 * 86400, ge=-1)
    deadletter_retention_s: int = Field(default=30 * 86400, ge=3600)
    kafka_replication_factor: int = Field(default=1, ge=1, le=16)
    # How long a dead letter is retried before it is counted as lost and the batch goes on.
    deadletter_timeout_s: float = Field(default=60.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _topic_keeps_the_horizon(self) -> Settings:
        if self.events_retention_s != -1 and self.events_retention_s < self.retention_s:
            raise ValueError(
                "events_retention_s must be -1 or at least retention_s (the state horizon)"
            )
        return self

    @field_validator("events_topic", "deadletter_topic", "consumer_group")
    @classmethod
    def _kafka_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,200}", value):
            raise ValueError("must be 1-200 characters of [A-Za-z0-9._-]")
        return value


def valid_source(name: str) -> bool:
    """A source name is safe as a label value and inside a Redis hash tag."""
    return bool(SOURCE_NAME.fullmatch(name))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def settings_or_exit(prog: str) -> Settings:
    """The settings for a command: a bad variable is one line naming it, and exit 2."""
    try:
        return get_settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "DEMANDMON_" + str(first["loc"][0]).upper() if first["loc"] else "settings"
        print(f"{prog}: {name}: {first['msg']}", file=sys.stderr)
        raise SystemExit(2) from None
