"""demandmon/clients.py: the options each client gets from the settings, how errors name
the service (never a password), the web pieces (basic auth, HTTPS context), and the probe
that says why Kafka could not be reached. Network: local sockets on 127.0.0.1 only."""

from __future__ import annotations

import base64
import http.server
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiokafka.errors
import kafka.errors
import pytest
import redis
import redis.asyncio.cluster

from demandmon import clients
from demandmon.clients import (
    AUTH_FAILED,
    REFUSED,
    TLS_VERIFY_FAILED,
    ClientSetupError,
    kafka_failure,
    kafka_probe,
    kafka_secured,
    kafka_security,
    kafka_where,
    redis_client,
    redis_failure,
    redis_where,
)
from demandmon.settings import Settings
from demandmon.web import basic_auth_ok, http_get, metrics_auth_ok, server_ssl_context
from tests.unit.pki import Pki, pki_fixture  # noqa: F401  (the "pki" fixture)

SECRET = "s3cr3t-Pa55"


def _settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@contextmanager
def tls_listener(pki: Pki) -> Iterator[int]:
    """A local port that only shakes TLS hands (with the test certificate)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.cert, pki.key)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(2)
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass
            except OSError:
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        server.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- Kafka options -----------------------------------------------------------------------


def test_plaintext_kafka_has_no_security_options() -> None:
    settings = _settings(kafka_username="worker", kafka_password=SECRET)
    assert kafka_security(settings) == {"security_protocol": "PLAINTEXT"}
    assert not kafka_secured(settings)


def test_sasl_ssl_kafka_verifies_the_broker_and_logs_in(pki: Pki) -> None:
    settings = _settings(
        kafka_security_protocol="SASL_SSL",
        kafka_ca_file=str(pki.ca),
        kafka_username="worker",
        kafka_password=SECRET,
    )
    options = kafka_security(settings)
    context = options.pop("ssl_context")
    assert options == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "worker",
        "sasl_plain_password": SECRET,
    }
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert kafka_secured(settings)


def test_ssl_kafka_has_tls_but_no_login(pki: Pki) -> None:
    options = kafka_security(_settings(kafka_security_protocol="SSL", kafka_ca_file=str(pki.ca)))
    assert set(options) == {"security_protocol", "ssl_context"}


def test_sasl_plaintext_kafka_logs_in_without_tls() -> None:
    options = kafka_security(
        _settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_username="u", kafka_password="p")
    )
    assert "ssl_context" not in options
    assert options["sasl_plain_username"] == "u"


def test_an_unreadable_kafka_ca_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    settings = _settings(
        kafka_security_protocol="SASL_SSL", kafka_ca_file=str(missing), kafka_password=SECRET
    )
    with pytest.raises(ClientSetupError, match=r"cannot read the CA file .*nope\.pem") as caught:
        kafka_security(settings)
    assert SECRET not in str(caught.value)


def test_kafka_where_names_the_user_never_the_password() -> None:
    settings = _settings(
        kafka_bootstrap="127.0.0.1:9093", kafka_username="worker", kafka_password=SECRET
    )
    assert kafka_where(settings) == "Kafka at 127.0.0.1:9093 as worker"
    assert kafka_where(_settings(kafka_bootstrap="127.0.0.1:9092")) == "Kafka at 127.0.0.1:9092"


# -- Redis options -----------------------------------------------------------------------


def test_plain_redis_has_no_tls_options() -> None:
    options = clients._redis_options(_settings(redis_url="redis://127.0.0.1:6379/0"), 5)
    assert options == {"socket_timeout": 5, "socket_connect_timeout": 5}


def test_rediss_verifies_the_server_with_the_ca_and_logs_in(pki: Pki) -> None:
    settings = _settings(
        redis_url="rediss://127.0.0.1:6380/0",
        redis_username="reader",
        redis_password=SECRET,
        redis_ca_file=str(pki.ca),
    )
    options = clients._redis_options(settings, 5)
    assert options["ssl_cert_reqs"] == "required"
    assert options["ssl_ca_certs"] == str(pki.ca)
    assert options["ssl_min_version"] == ssl.TLSVersion.TLSv1_2
    assert (options["username"], options["password"]) == ("reader", SECRET)
    client = redis_client(settings)
    assert isinstance(client, redis.Redis)
    assert client.connection_pool.connection_class is redis.SSLConnection


def test_a_cluster_gets_redis_pys_cluster_clients_with_the_same_options() -> None:
    settings = _settings(
        redis_url="redis://127.0.0.1:1/0", redis_password=SECRET, redis_cluster=True
    )
    asynchronous = clients.redis_async_client(settings, timeout_s=7)  # connects on first use
    assert isinstance(asynchronous, redis.asyncio.cluster.RedisCluster)
    (node,) = asynchronous.nodes_manager.startup_nodes.values()
    assert (node.host, node.port) == ("127.0.0.1", 1)
    assert node.connection_kwargs["password"] == SECRET
    assert node.connection_kwargs["socket_timeout"] == 7
    # The blocking client reads the cluster's layout as it is made: a port nothing listens
    # on is a redis.ConnectionError (handled like any client's), one line naming Redis.
    with pytest.raises(redis.ConnectionError) as raised:
        redis_client(settings, timeout_s=1)
    assert (
        redis_failure(settings, raised.value).line == f"Redis at redis://127.0.0.1:1/0: {REFUSED}"
    )


def test_settings_read_redis_cluster_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _settings().redis_cluster is False
    monkeypatch.setenv("DEMANDMON_REDIS_CLUSTER", "true")
    assert _settings().redis_cluster is True


@pytest.mark.parametrize(
    ("url", "user", "shown"),
    [
        ("redis://:pw123456@127.0.0.1:6379/0", "", "Redis at redis://127.0.0.1:6379/0"),
        ("redis://bob:pw123456@127.0.0.1:6379/0", "", "Redis at redis://bob@127.0.0.1:6379/0"),
        ("rediss://127.0.0.1:6380/0", "reader", "Redis at rediss://reader@127.0.0.1:6380/0"),
        ("rediss://x:pw123456@redis:6380/2", "reader", "Redis at rediss://reader@redis:6380/2"),
    ],
)
def test_redis_where_never_shows_a_password(url: str, user: str, shown: str) -> None:
    settings = _settings(redis_url=url, redis_username=user, redis_password=SECRET)
    assert redis_where(settings) == shown
    assert "pw123456" not in redis_where(settings)
    assert SECRET not in redis_where(settings)


# -- what went wrong, in one line ----------------------------------------------------------


def _raised(exc: BaseException, cause: BaseException) -> BaseException:
    """``exc`` as a library raises it while handling ``cause``."""
    try:
        try:
            raise cause
        except BaseException:
            raise exc  # noqa: B904
    except BaseException as raised:
        return raised


KAFKA = {
    "kafka_bootstrap": "127.0.0.1:9093",
    "kafka_security_protocol": "SASL_SSL",
    "kafka_username": "worker",
    "kafka_password": SECRET,
}


@pytest.mark.parametrize(
    "error",
    [
        kafka.errors.SaslAuthenticationFailedError("invalid credentials"),
        aiokafka.errors.SaslAuthenticationFailed("invalid credentials"),
        kafka.errors.UnsupportedSaslMechanismError("no SCRAM"),
    ],
)
def test_a_kafka_login_failure_is_one_line(error: Exception) -> None:
    failure = kafka_failure(_settings(**KAFKA), error)
    assert failure.line == "Kafka at 127.0.0.1:9093 as worker: authentication failed"
    assert not failure.retry


def test_kafka_authorization_failure_names_the_error() -> None:
    failure = kafka_failure(_settings(**KAFKA), kafka.errors.TopicAuthorizationFailedError())
    assert failure.line.endswith(": not authorized (TopicAuthorizationFailedError)")
    assert not failure.retry


@pytest.mark.parametrize(
    ("probed", "retry"),
    [(AUTH_FAILED, False), (TLS_VERIFY_FAILED, False), (REFUSED, True), (None, True)],
)
def test_a_kafka_timeout_says_what_the_probe_found(
    monkeypatch: pytest.MonkeyPatch, probed: str | None, retry: bool
) -> None:
    # kafka-python retries a bad login or certificate until its deadline, then says only
    # "Unable to bootstrap": the probe finds out why.
    monkeypatch.setattr(clients, "kafka_probe", lambda settings: probed)
    failure = kafka_failure(_settings(**KAFKA), kafka.errors.KafkaTimeoutError("bootstrap"))
    reason = probed or "not answering (KafkaTimeoutError)"
    assert failure.line == f"Kafka at 127.0.0.1:9093 as worker: {reason}"
    assert failure.retry is retry
    assert SECRET not in failure.line


def test_kafka_probe_finds_a_refused_connection() -> None:
    settings = _settings(kafka_bootstrap=f"127.0.0.1:{closed_port()}")
    assert kafka_probe(settings) == REFUSED


def test_kafka_probe_finds_an_untrusted_certificate(pki: Pki) -> None:
    with tls_listener(pki) as port:
        settings = _settings(
            kafka_bootstrap=f"127.0.0.1:{port}",
            kafka_security_protocol="SASL_SSL",
            kafka_ca_file=str(pki.other_ca),
            kafka_username="worker",
            kafka_password=SECRET,
        )
        assert kafka_probe(settings) == TLS_VERIFY_FAILED
        failure = kafka_failure(settings, kafka.errors.KafkaTimeoutError())
    assert failure.line == f"Kafka at 127.0.0.1:{port} as worker: {TLS_VERIFY_FAILED}"
    assert not failure.retry


REDIS = {"redis_url": "rediss://127.0.0.1:6380/0", "redis_username": "reader"}


@pytest.mark.parametrize(
    ("error", "reason", "retry"),
    [
        (redis.AuthenticationError("invalid username-password pair"), AUTH_FAILED, False),
        (
            _raised(redis.ConnectionError("Error 1"), ssl.SSLCertVerificationError("verify")),
            TLS_VERIFY_FAILED,
            False,
        ),
        (_raised(redis.ConnectionError("Error 111"), ConnectionRefusedError()), REFUSED, True),
        (redis.TimeoutError("Timeout"), "not answering (timed out)", True),
        (redis.exceptions.NoPermissionError("NOPERM"), "not permitted (NOPERM)", False),
        (
            redis.exceptions.NoPermissionError(
                "this user has no permissions to run the 'script|exists' command"
            ),
            "not permitted (script|exists)",
            False,
        ),
    ],
)
def test_a_redis_failure_is_one_line(error: Exception, reason: str, retry: bool) -> None:
    failure = redis_failure(_settings(**REDIS, redis_password=SECRET), error)
    assert failure.line == f"Redis at rediss://reader@127.0.0.1:6380/0: {reason}"
    assert failure.retry is retry


def test_redis_against_an_untrusted_certificate_says_so(pki: Pki) -> None:
    with tls_listener(pki) as port:
        settings = _settings(
            redis_url=f"rediss://127.0.0.1:{port}/0",
            redis_username="reader",
            redis_password=SECRET,
            redis_ca_file=str(pki.other_ca),
        )
        with pytest.raises(redis.ConnectionError) as caught:
            redis_client(settings, timeout_s=2).ping()
    failure = redis_failure(settings, caught.value)
    assert failure.line == f"Redis at rediss://reader@127.0.0.1:{port}/0: {TLS_VERIFY_FAILED}"
    assert SECRET not in failure.line


def test_redis_refused_is_named_without_the_password_in_the_url() -> None:
    port = closed_port()
    settings = _settings(redis_url=f"redis://:{SECRET}@127.0.0.1:{port}/0")
    with pytest.raises(redis.ConnectionError) as caught:
        redis_client(settings, timeout_s=2).ping()
    failure = redis_failure(settings, caught.value)
    assert failure.line == f"Redis at redis://127.0.0.1:{port}/0: connection refused"
    assert failure.retry


def test_redis_with_a_missing_ca_file_says_so(pki: Pki, tmp_path: Path) -> None:
    with tls_listener(pki) as port:
        settings = _settings(
            redis_url=f"rediss://127.0.0.1:{port}/0", redis_ca_file=str(tmp_path / "ca.pem")
        )
        with pytest.raises(redis.ConnectionError) as caught:
            redis_client(settings, timeout_s=2).ping()
    failure = redis_failure(settings, caught.value)
    assert failure.line.startswith(f"Redis at rediss://127.0.0.1:{port}/0: cannot read the CA")
    assert not failure.retry


# -- the web servers' pieces -------------------------------------------------------------


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        (_basic("prometheus", SECRET), True),
        (_basic("prometheus", SECRET + "x"), False),
        (_basic("other", SECRET), False),
        (f"Bearer {SECRET}", False),
        ("Basic not-base64!", False),
        ("", False),
        (None, False),
    ],
)
def test_basic_auth(header: str | None, ok: bool) -> None:
    assert basic_auth_ok(header, "prometheus", SECRET) is ok
    settings = _settings(metrics_username="prometheus", metrics_password=SECRET)
    assert metrics_auth_ok(settings, header) is ok


def test_metrics_are_open_without_a_metrics_user() -> None:
    assert metrics_auth_ok(_settings(), None)


def test_server_context_needs_both_files(pki: Pki, tmp_path: Path) -> None:
    assert server_ssl_context(_settings()) is None
    assert server_ssl_context(_settings(web_tls_cert_file=str(pki.cert))) is None
    context = server_ssl_context(
        _settings(web_tls_cert_file=str(pki.cert), web_tls_key_file=str(pki.key))
    )
    assert context is not None
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    with pytest.raises(ClientSetupError, match="cannot load the web certificate"):
        server_ssl_context(
            _settings(web_tls_cert_file=str(tmp_path / "x.pem"), web_tls_key_file=str(pki.key))
        )


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        ok = basic_auth_ok(self.headers.get("Authorization"), "prometheus", SECRET)
        self.send_response(200 if ok else 401)
        self.end_headers()
        self.wfile.write(b"ok" if ok else b"no")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def https_server(pki: Pki) -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    context = server_ssl_context(
        _settings(web_tls_cert_file=str(pki.cert), web_tls_key_file=str(pki.key))
    )
    assert context is not None
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def test_http_get_trusts_the_ca_and_sends_basic_auth(pki: Pki) -> None:
    with https_server(pki) as port:
        url = f"https://127.0.0.1:{port}/metrics"
        body = http_get(url, ca_file=str(pki.ca), username="prometheus", password=SECRET)
        assert body == b"ok"
        with pytest.raises(OSError, match="401"):
            http_get(url, ca_file=str(pki.ca))
        with pytest.raises(OSError, match="CERTIFICATE_VERIFY_FAILED"):
            http_get(url, ca_file=str(pki.other_ca), username="prometheus", password=SECRET)
