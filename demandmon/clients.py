"""Kafka and Redis clients built from the one settings object, with its TLS and SASL
settings, so that every command (worker, exporter, replay, evaluate, topics, sources)
connects the same way. Errors name the service and where it is, never a password. (The web
pieces the worker and the exporter share are in demandmon/web.py.)"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeAlias
from urllib.parse import urlsplit, urlunsplit

import aiokafka.conn
import aiokafka.errors
import kafka.errors
import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster

from demandmon.settings import Settings

AUTH_FAILED = "authentication failed"
TLS_VERIFY_FAILED = "TLS certificate verification failed"
REFUSED = "connection refused"
RESET = "connection reset by the server (TLS expected?)"
PROBE_TIMEOUT_S = 3.0
# Redis's NOPERM error names the command (never a value): "... run the 'config|get' command"
_NOPERM_COMMAND = re.compile(r"run the '([a-z|_-]{1,40})' command")


# A client of one Redis, or of a Redis Cluster (DEMANDMON_REDIS_CLUSTER). The product uses
# only what both do: commands on one key (or keys of one hash slot), pipelines without
# transactions, and scripts run through demandmon.state.scripts.
SyncRedis: TypeAlias = redis.Redis | redis.cluster.RedisCluster
AsyncRedis: TypeAlias = redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster


class ClientSetupError(ValueError):
    """A client cannot even be built (an unreadable CA file): one line, no secret."""


class ServiceUnavailable(RuntimeError):
    """A service cannot be used (not answering, a wrong password or certificate, a topic
    missing): one line naming the service, never a secret."""


class KafkaUnavailable(ServiceUnavailable):
    pass


class RedisUnavailable(ServiceUnavailable):
    pass


@dataclass(frozen=True)
class Failure:
    """Why a service could not be used, as one line naming it, and whether waiting
    could help (it is not up yet) or not (a wrong password or certificate)."""

    line: str
    retry: bool
    # Nothing listens there: the port refused at once. Commands stop on it rather than
    # wait (a wrong port or a stack that is not up), the worker included.
    refused: bool = False


def client_ssl_context(ca_file: str) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=ca_file or None)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise ClientSetupError(f"cannot read the CA file {ca_file} ({reason})") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


# -- Kafka -----------------------------------------------------------------------------


def kafka_secured(settings: Settings) -> bool:
    """Whether Kafka is the secure shape (the worker and replay then never create topics)."""
    return settings.kafka_security_protocol != "PLAINTEXT"


def kafka_security(settings: Settings) -> dict[str, Any]:
    """Security options shared by aiokafka and kafka-python clients (same option names)."""
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = client_ssl_context(settings.kafka_ca_file)
    if protocol.startswith("SASL"):
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_username
        options["sasl_plain_password"] = settings.kafka_password.get_secret_value()
    return options


def kafka_where(settings: Settings) -> str:
    """How an error names Kafka: the address and, when there is one, the user."""
    who = f" as {settings.kafka_username}" if settings.kafka_username else ""
    return f"Kafka at {settings.kafka_bootstrap}{who}"


_KAFKA_AUTH = (
    kafka.errors.SaslAuthenticationFailedError,
    kafka.errors.UnsupportedSaslMechanismError,
    kafka.errors.IllegalSaslStateError,
    aiokafka.errors.SaslAuthenticationFailed,
    aiokafka.errors.AuthenticationFailedError,
    aiokafka.errors.UnsupportedSaslMechanismError,
    aiokafka.errors.IllegalSaslStateError,
)
_KAFKA_DENIED = (
    kafka.errors.AuthorizationError,
    aiokafka.errors.TopicAuthorizationFailedError,
    aiokafka.errors.GroupAuthorizationFailedError,
    aiokafka.errors.ClusterAuthorizationFailedError,
    aiokafka.errors.TransactionalIdAuthorizationFailed,
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and those it was raised from or while handling."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _socket_problem(exc: BaseException) -> str | None:
    """A lasting TLS problem, or a refused connection, found in the exception's chain."""
    for link in _chain(exc):
        if isinstance(link, ssl.SSLCertVerificationError):
            return TLS_VERIFY_FAILED
        if isinstance(link, ssl.SSLError):
            return f"TLS handshake failed ({link.reason or type(link).__name__})"
        if isinstance(link, ConnectionRefusedError):
            return REFUSED
        if isinstance(link, ConnectionResetError):
            return RESET
        if isinstance(link, ClientSetupError):
            return str(link)
    return None


def _first_broker(bootstrap: str) -> tuple[str, int] | None:
    host, _, port = bootstrap.split(",")[0].strip().rpartition(":")
    if not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


async def _connect_once(settings: Settings, host: str, port: int) -> None:
    options = kafka_security(settings)
    conn = await aiokafka.conn.create_conn(
        host, port, client_id="demandmon-probe", request_timeout_ms=5000, **options
    )
    conn.close()


def kafka_probe(settings: Settings) -> str | None:
    """Connect to the first broker once, with TLS and SASL as configured: what is wrong,
    or None if that works. (Sync callers only: it runs its own event loop.)

    kafka-python retries a failed handshake or login until its deadline and then reports
    only a timeout; one aiokafka connection says why, for the line the user sees."""
    broker = _first_broker(settings.kafka_bootstrap)
    if broker is None:
        return None
    try:
        asyncio.run(asyncio.wait_for(_connect_once(settings, *broker), PROBE_TIMEOUT_S))
    except _KAFKA_AUTH:
        return AUTH_FAILED
    except TimeoutError:
        return "not answering (timed out)"
    except Exception as exc:  # any failure is a reason to report, never to crash on
        return _socket_problem(exc) or f"not answering ({type(exc).__name__})"
    return None


def kafka_failure(settings: Settings, exc: BaseException) -> Failure:
    """One line for a Kafka client's failure (kafka-python or aiokafka)."""
    where = kafka_where(settings)
    for link in _chain(exc):
        if isinstance(link, _KAFKA_AUTH):
            return Failure(f"{where}: {AUTH_FAILED}", retry=False)
        if isinstance(link, _KAFKA_DENIED):
            return Failure(f"{where}: not authorized ({type(link).__name__})", retry=False)
    problem = _socket_problem(exc)
    if problem is None:
        # The clients hide why they could not connect: find out with one handshake.
        problem = kafka_probe(settings)
    if problem is None:
        problem = f"not answering ({type(exc).__name__})"
    retry = problem in (REFUSED, RESET) or problem.startswith("not answering")
    return _unreached(settings, where, problem, "DEMANDMON_KAFKA_BOOTSTRAP", retry)


def kafka_refused(settings: Settings) -> Failure | None:
    """A Failure when every bootstrap broker refuses a TCP connection (nothing listens
    there), else None. kafka-python would retry a refused broker until its bootstrap
    timeout and say only that it timed out; this takes milliseconds."""
    brokers = [_first_broker(b) for b in settings.kafka_bootstrap.split(",")]
    for broker in brokers:
        if broker is None:
            return None
        try:
            socket.create_connection(broker, timeout=PROBE_TIMEOUT_S).close()
        except ConnectionRefusedError:
            continue
        except OSError:
            return None  # not a refusal: let the client find out what it is
        return None
    where = kafka_where(settings)
    return _unreached(settings, where, REFUSED, "DEMANDMON_KAFKA_BOOTSTRAP", retry=True)


def _unreached(settings: Settings, where: str, problem: str, variable: str, retry: bool) -> Failure:
    """The Failure for ``problem`` at ``where``; when the service was not reached and the
    address is a default because no stack settings were found, the line says so."""
    line = f"{where}: {problem}"
    if problem == REFUSED or problem.startswith("not answering"):
        note = settings.unreached_note(variable)
        line += f"; {note}" if note else ""
    return Failure(line, retry=retry, refused=problem == REFUSED)


# -- Redis -----------------------------------------------------------------------------


def redis_where(settings: Settings) -> str:
    """The Redis URL without any password in it, for error messages."""
    parts = urlsplit(settings.redis_url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    user = settings.redis_username or parts.username or ""
    if user:
        netloc = f"{user}@{netloc}"
    return "Redis at " + urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def redis_failure(settings: Settings, exc: BaseException) -> Failure:
    """One line for a Redis client's failure."""
    where = redis_where(settings)
    for link in _chain(exc):
        if isinstance(link, redis.AuthenticationError):
            return Failure(f"{where}: {AUTH_FAILED}", retry=False)
        if isinstance(link, redis.exceptions.NoPermissionError):
            command = _NOPERM_COMMAND.search(str(link))
            what = command.group(1) if command else "NOPERM"
            return Failure(f"{where}: not permitted ({what})", retry=False)
        if isinstance(link, FileNotFoundError | PermissionError):
            reason = link.strerror or type(link).__name__
            ca_file = settings.redis_ca_file
            return Failure(f"{where}: cannot read the CA file {ca_file} ({reason})", retry=False)
    problem = _socket_problem(exc)
    if problem is None and "certificate verify failed" in str(exc):
        problem = TLS_VERIFY_FAILED
    if problem is None:
        problem = "not answering " + (
            "(timed out)" if isinstance(exc, redis.TimeoutError) else f"({type(exc).__name__})"
        )
    retry = problem in (REFUSED, RESET) or problem.startswith("not answering")
    return _unreached(settings, where, problem, "DEMANDMON_REDIS_URL", retry)


def _redis_options(settings: Settings, timeout_s: float) -> dict[str, Any]:
    options: dict[str, Any] = {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s}
    if settings.redis_username:
        options["username"] = settings.redis_username
    password = settings.redis_password.get_secret_value()
    if password:
        options["password"] = password
    if settings.redis_url.startswith("rediss://"):
        options["ssl_cert_reqs"] = "required"
        options["ssl_min_version"] = ssl.TLSVersion.TLSv1_2
        if settings.redis_ca_file:
            options["ssl_ca_certs"] = settings.redis_ca_file
    return options


def redis_client(settings: Settings, timeout_s: float = 10.0) -> SyncRedis:
    """A blocking client: of one Redis, or of the cluster DEMANDMON_REDIS_URL is a node
    of. The cluster client asks that node for the cluster's layout as it is made, so it
    can fail here: as a redis.ConnectionError, like any client's first command."""
    options = _redis_options(settings, timeout_s)
    if not settings.redis_cluster:
        return redis.Redis.from_url(settings.redis_url, **options)
    try:
        return redis.cluster.RedisCluster.from_url(settings.redis_url, **options)
    except redis.exceptions.RedisClusterException as exc:
        raise redis.ConnectionError(f"cannot read the cluster's layout ({exc})") from exc


def redis_async_client(settings: Settings, timeout_s: float = 30.0) -> AsyncRedis:
    """An asyncio client, of one Redis or of the cluster (which connects on first use)."""
    options = _redis_options(settings, timeout_s)
    if settings.redis_cluster:
        return redis.asyncio.cluster.RedisCluster.from_url(settings.redis_url, **options)
    return redis.asyncio.Redis.from_url(settings.redis_url, **options)
