"""One validated settings object, read from the environment (prefix ``DEMANDMON_``)."""

from __future__ import annotations

import os
import re
import sys
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from demandmon.stacks import no_stack_note, stack_dir

# Who a command acts as. A secure stack gives each role its own Kafka and Redis user
# (.stack/<name>/roles/<role>.env); see README "Running it securely".
Role = Literal["worker", "replay", "exporter", "reader", "admin"]
# The variable naming the stack folder whose endpoints.env (and roles/) commands read.
# One broker of DEMANDMON_KAFKA_BOOTSTRAP: host:port, an IPv6 host in brackets.
BROKER = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):([0-9]{1,5})$")
# One e-mail address, plainly (no display name, no spaces or commas).
EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+"
# secret field -> the field naming a file that holds it (DEMANDMON_<SECRET>_FILE)
SECRET_FILES = {
    "kafka_password": "kafka_password_file",
    "redis_password": "redis_password_file",
    "metrics_password": "metrics_password_file",
    "alerts_token": "alerts_token_file",
    "prometheus_password": "prometheus_password_file",
}


class Settings(BaseSettings):
    """Where the services are and how the pipeline behaves.

    Defaults fit the local stack: ``demandmon stack up`` writes the endpoints it chose to
    ``.stack/<name>/endpoints.env`` and the other commands read them from there when the
    corresponding variables are not set.
    """

    # The stack's endpoints.env is passed in by get_settings (found from any folder, see
    # stack_dir); real variables win. Settings() alone reads the environment only.
    model_config = SettingsConfigDict(env_prefix="DEMANDMON_", extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:9092"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Redis Cluster: DEMANDMON_REDIS_URL names one node, the client learns the others.
    redis_cluster: bool = False
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
    # How far one partition may run ahead of the slowest one still delivering, in event
    # time, within a worker (agents/skew.py): the source's watermark, which lateness
    # follows, may run this far past what the file's order gives. An event this close to
    # the horizon's edge in file order may still turn too late. Never more than a quarter
    # of the horizon (``partition_skew_s``).
    max_partition_skew_s: int = Field(default=6 * 3600, ge=60)

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

    # Kafka security: SASL_SSL with SCRAM on a secure deployment.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    kafka_username: str = ""
    kafka_password: SecretStr = SecretStr("")
    kafka_password_file: str = ""
    kafka_ca_file: str = ""  # the CA that signed the brokers' certificates
    # The users `demandmon topics` (as admin) grants the worker's and replay's ACLs to.
    kafka_worker_user: str = Field(default="worker", pattern=r"^[A-Za-z0-9._-]{1,64}$")
    kafka_replay_user: str = Field(default="replay", pattern=r"^[A-Za-z0-9._-]{1,64}$")
    # Redis: a rediss:// URL for TLS; the user and password apart from the URL, so that
    # the password can come from a file.
    redis_username: str = ""
    redis_password: SecretStr = SecretStr("")
    redis_password_file: str = ""
    redis_ca_file: str = ""
    # The worker's and exporter's web servers: HTTPS when both are set.
    web_tls_cert_file: str = ""
    web_tls_key_file: str = ""
    # Basic auth that /metrics requires (worker and exporter) when a username is set.
    metrics_username: str = ""
    metrics_password: SecretStr = SecretStr("")
    metrics_password_file: str = ""
    # The bearer token the exporter's /alerts webhook requires when set.
    alerts_token: SecretStr = SecretStr("")
    alerts_token_file: str = ""
    # How clients (demo, tests) reach Prometheus and Alertmanager behind basic auth.
    prometheus_username: str = ""
    prometheus_password: SecretStr = SecretStr("")
    prometheus_password_file: str = ""
    prometheus_ca_file: str = ""
    # Sources: live plus the replay sources registered, at most this many in all.
    max_sources: int = Field(default=20, ge=1, le=1000)
    # Alert email (Alertmanager's email receiver, docs/alerts.md): no host, no email.
    # Recipients: addresses separated by commas; per BCU as BCU=address, e.g. "AW=a@x.uk".
    smtp_host: str = Field(default="", pattern=r"^([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*)?$")
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_from: str = Field(default="", pattern=rf"^({EMAIL})?$")
    smtp_require_tls: bool = True
    alert_email_to: str = Field(default="", pattern=rf"^({EMAIL}(,{EMAIL})*)?$")
    alert_email_bcu_to: str = Field(
        default="", pattern=rf"^([A-Z]{{2}}={EMAIL}(,[A-Z]{{2}}={EMAIL})*)?$"
    )

    # Set by get_settings when no stack's endpoints.env was found: the note an error about
    # a service that cannot be reached ends with (see unreached_note).
    _no_stack_note: str = PrivateAttr(default="")

    def unreached_note(self, variable: str) -> str:
        """What to add to "cannot reach this service" when the address may simply be the
        default because no stack settings were found: "" when they were, or when the
        service's own variable (e.g. DEMANDMON_REDIS_URL) is set in the environment."""
        if not self._no_stack_note or variable in os.environ:
            return ""
        return self._no_stack_note

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap(cls, value: str) -> str:
        brokers = [b.strip() for b in value.split(",")]
        for broker in brokers:
            match = BROKER.fullmatch(broker)
            if match is None or not 1 <= int(match.group(2)) <= 65535:
                what = "is empty" if not value.strip() else f"has {broker!r}"
                raise ValueError(f"{what}; expected host:port, or several separated by commas")
        return ",".join(brokers)

    @model_validator(mode="after")
    def _read_secret_files(self) -> Settings:
        for secret, file_field in SECRET_FILES.items():
            path = getattr(self, file_field)
            if not path:
                continue
            variable = f"DEMANDMON_{file_field.upper()}"
            try:
                text = Path(path).read_text().strip()
            except OSError as exc:
                raise ValueError(f"{variable}: cannot read {path} ({exc.strerror})") from None
            setattr(self, secret, SecretStr(text))
        return self

    @property
    def partition_skew_s(self) -> int:
        return min(self.max_partition_skew_s, self.retention_s // 4)

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


def env_files(role: Role | None, base: Path | None = None) -> tuple[Path, ...]:
    """The stack's endpoints, then the role's credentials (a secure stack writes one file
    per role); environment variables win over both."""
    if base is None:
        return ()
    files = [base / "endpoints.env"]
    if role is not None:
        files.append(base / "roles" / f"{role}.env")
    return tuple(files)


@lru_cache(maxsize=8)
def get_settings(role: Role | None = None) -> Settings:
    base = stack_dir()
    settings = Settings(_env_file=env_files(role, base))  # type: ignore[call-arg]
    settings._no_stack_note = no_stack_note(base)
    return settings


def settings_or_exit(prog: str, role: Role | None = None) -> Settings:
    """The settings for a command: a bad variable is one line naming it, and exit 2."""
    try:
        return get_settings(role)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["loc"]:
            reason = str(first["msg"]).removeprefix("Value error, ")
            message = f"DEMANDMON_{str(first['loc'][0]).upper()}: {reason}"
        else:  # a check across fields, or a secret file: the message names the variable
            message = str(first["msg"]).removeprefix("Value error, ")
        print(f"{prog}: {message}", file=sys.stderr)
        raise SystemExit(2) from None
