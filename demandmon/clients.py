"""Kafka and Redis clients built from the one settings object, with its TLS and SASL
settings, so that every command (worker, exporter, replay, evaluate, topics, sources)
connects the same way. Errors name the service and where it is, never a password."""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
import redis.asyncio

from demandmon.settings import Settings


def _ssl_context(ca_file: str) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_file or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def kafka_security(settings: Settings) -> dict[str, Any]:
    """Security options shared by aiokafka and kafka-python clients (same option names)."""
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = _ssl_context(settings.kafka_ca_file)
    if protocol.startswith("SASL"):
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_username
        options["sasl_plain_password"] = settings.kafka_password.get_secret_value()
    return options


def kafka_where(settings: Settings) -> str:
    """How an error names Kafka: the address and, when there is one, the user."""
    who = f" as {settings.kafka_username}" if settings.kafka_username else ""
    return f"Kafka at {settings.kafka_bootstrap}{who}"


def redis_where(settings: Settings) -> str:
    """The Redis URL without any password in it, for error messages."""
    parts = urlsplit(settings.redis_url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    user = settings.redis_username or parts.username or ""
    if user:
        netloc = f"{user}@{netloc}"
    return "Redis at " + urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _redis_options(settings: Settings, timeout_s: float) -> dict[str, Any]:
    options: dict[str, Any] = {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s}
    if settings.redis_username:
        options["username"] = settings.redis_username
    password = settings.redis_password.get_secret_value()
    if password:
        options["password"] = password
    if settings.redis_url.startswith("rediss://"):
        options["ssl_cert_reqs"] = "required"
        if settings.redis_ca_file:
            options["ssl_ca_certs"] = settings.redis_ca_file
    return options


def redis_client(settings: Settings, timeout_s: float = 10.0) -> redis.Redis:
    return redis.Redis.from_url(settings.redis_url, **_redis_options(settings, timeout_s))


def redis_async_client(settings: Settings, timeout_s: float = 30.0) -> redis.asyncio.Redis:
    return redis.asyncio.Redis.from_url(settings.redis_url, **_redis_options(settings, timeout_s))
