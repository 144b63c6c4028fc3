"""One validated settings object, read from the environment (prefix ``DEMANDMON_``)."""

from __future__ import annotations

import re
import sys
from functools import lru_cache

from pydantic import Field, ValidationError, field_validator
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
    max_message_bytes: int = Field(default=64 * 1024, ge=1024)

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
