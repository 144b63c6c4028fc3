"""`demandmon stack up --secure` against the real services, with real clients: TLS and
authentication on every listener, a least-privilege Redis user per role, secrets in
private files (docs/security.md)."""

from __future__ import annotations

import base64
import json
import logging
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis
from kafka import KafkaAdminClient
from kafka.errors import KafkaError, TopicAuthorizationFailedError
from redis.backoff import NoBackoff
from redis.retry import Retry

from deploy.secrets import SecretsLayout
from deploy.stack import control
from deploy.stack.cli import main as stack_main
from deploy.stack.layout import ROLES
from deploy.stack.services import reload_prometheus
from tests.conftest import REPO, SecureStack
from tests.helpers import wait_for

pytestmark = pytest.mark.integration

BOOTSTRAP_MS = 3000  # a refused Kafka client gives up after one short bootstrap


def _secrets(stack: SecureStack) -> SecretsLayout:
    return stack.state.secrets()


def _ca(stack: SecureStack) -> str:
    return str(_secrets(stack).ca_cert)


# Files ---------------------------------------------------------------------------------
def test_secret_files_are_0600_in_a_0700_folder(secure_stack: SecureStack) -> None:
    layout, s = secure_stack.layout, _secrets(secure_stack)
    assert (layout.secrets_dir.stat().st_mode & 0o777) == 0o700
    assert (layout.roles_dir.stat().st_mode & 0o777) == 0o700
    for path in layout.secrets_dir.iterdir():
        mode = path.stat().st_mode & 0o777
        if path in s.public_files():
            assert mode & 0o022 == 0, path.name  # certificates: readable, never writable
        else:
            assert mode == 0o600, path.name
    assert (layout.secrets_dir / "kafka-server.properties").exists()  # holds a password
    assert not (layout.secrets_dir / "kafka-format.args").exists()  # removed after format
    private = [layout.state_file, layout.env_file, layout.dir / "conf" / "redis.conf"]
    private += [layout.role_file(role) for role in ROLES]
    for path in private:
        assert (path.stat().st_mode & 0o777) == 0o600, path


def test_no_secret_in_state_endpoints_or_command_lines(secure_stack: SecureStack) -> None:
    s, layout = _secrets(secure_stack), secure_stack.layout
    values = [s.read(p) for p in s.secret_files() if p.suffix in (".password", ".token")]
    shown = layout.state_file.read_text() + layout.env_file.read_text()
    shown += "".join(layout.role_file(role).read_text() for role in ROLES)
    for pid in secure_stack.state.pids.values():
        shown += Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    assert not [v for v in values if v in shown]


def test_up_again_stays_secure_prints_no_secret_and_status_reports(
    secure_stack: SecureStack, capsys: pytest.CaptureFixture[str]
) -> None:
    layout, before = secure_stack.layout, secure_stack.state
    where = ["--name", layout.name, "--dir", str(layout.dir.parent)]
    assert stack_main(["up", *where]) == 0  # no --secure: it stays secure
    printed = capsys.readouterr().out
    assert printed.startswith(f"secure stack {layout.name} is up")
    assert "DEMANDMON_REDIS_URL=rediss://127.0.0.1:" in printed
    s = _secrets(secure_stack)
    for path in s.secret_files():
        if path.suffix in (".password", ".token"):
            assert s.read(path) not in printed
    again = layout.load()
    assert again is not None
    assert again.secure and again.pids == before.pids and again.ports == before.ports
    assert control.status(layout.dir.parent, layout.name) == dict.fromkeys(
        ("kafka", "redis", "prometheus", "alertmanager"), True
    )
    assert stack_main(["status", *where]) == 0
    out = capsys.readouterr().out
    assert "kafka         up" in out and "alertmanager  up" in out
    assert "worker        down" in out  # none started: probed over https, informational


def test_a_secure_service_that_cannot_start_is_one_line_naming_it(
    secure_stack: SecureStack, tmp_path: Path
) -> None:
    busy = secure_stack.state.ports["redis"]  # a port that certainly answers
    argv = [sys.executable, "-m", "demandmon.cli", "stack", "up", "--secure"]
    argv += ["--name", "clash", "--dir", str(tmp_path), "--kafka-port", str(busy)]
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=120, cwd=REPO, check=False
    )
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"demandmon stack: kafka: port {busy} on 127.0.0.1 is in use")
    assert "clash/logs/kafka.log" in line
    assert (tmp_path / "clash" / "secrets" / "ca.pem").exists()  # made before the start
    assert control.down(tmp_path, "clash", purge=True) == []


# Kafka -------------------------------------------------------------------------------
def _kafka_admin(stack: SecureStack, user: str, password: str) -> KafkaAdminClient:
    return KafkaAdminClient(
        bootstrap_servers=stack.env()["DEMANDMON_KAFKA_BOOTSTRAP"],
        security_protocol="SASL_SSL",
        ssl_context=ssl.create_default_context(cafile=_ca(stack)),
        sasl_mechanism="SCRAM-SHA-512",
        sasl_plain_username=user,
        sasl_plain_password=password,
        request_timeout_ms=5000,
        bootstrap_timeout_ms=BOOTSTRAP_MS,
    )


def _kafka_password(stack: SecureStack, user: str) -> str:
    s = _secrets(stack)
    return s.read(s.kafka_password(user))


def test_kafka_refuses_a_plaintext_client(secure_stack: SecureStack) -> None:
    bootstrap = secure_stack.env()["DEMANDMON_KAFKA_BOOTSTRAP"]
    with pytest.raises(KafkaError):
        KafkaAdminClient(bootstrap_servers=bootstrap, bootstrap_timeout_ms=BOOTSTRAP_MS)
    # What the plaintext client met: a TLS listener, whose certificate the CA signed.
    host, port = bootstrap.split(":")
    context = ssl.create_default_context(cafile=_ca(secure_stack))
    with (
        socket.create_connection((host, int(port)), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_kafka_refuses_a_wrong_password(
    secure_stack: SecureStack, caplog: pytest.LogCaptureFixture
) -> None:
    # Refused by SCRAM, not by a network fault: kafka-python logs the broker's reason. On a
    # busy machine one short bootstrap may end before an attempt got that far: try again.
    with caplog.at_level(logging.WARNING, logger="kafka"):
        for _ in range(5):
            with pytest.raises(KafkaError):
                _kafka_admin(secure_stack, "admin", "not-the-password")
            if "invalid credentials" in caplog.text:
                break
            time.sleep(1)  # the broker was only closing the last attempt's connection
    assert "invalid credentials" in caplog.text


def test_kafka_admin_creates_a_topic_and_a_user_without_acls_cannot(
    secure_stack: SecureStack,
) -> None:
    topic = f"secure.{uuid.uuid4().hex[:8]}"
    admin = _kafka_admin(secure_stack, "admin", _kafka_password(secure_stack, "admin"))
    try:
        admin.create_topics({topic: {"num_partitions": 2, "replication_factor": 1}})
        assert topic in admin.list_topics()
    finally:
        admin.close()
    # The worker authenticates, but StandardAuthorizer grants it nothing without ACLs.
    worker = _kafka_admin(secure_stack, "worker", _kafka_password(secure_stack, "worker"))
    try:
        assert topic not in worker.list_topics()
        with pytest.raises(TopicAuthorizationFailedError):
            worker.create_topics({f"{topic}.w": {"num_partitions": 1, "replication_factor": 1}})
    finally:
        worker.close()


def _api_versions(port: int, context: ssl.SSLContext) -> bytes:
    """Send ApiVersions v0 (answered before any authentication) over TLS; the reply."""
    body = struct.pack(">hhih", 18, 0, 1, 1) + b"x"
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(struct.pack(">i", len(body)) + body)
        return tls.recv(64)


def test_kafka_controller_listener_wants_a_client_certificate(secure_stack: SecureStack) -> None:
    port, s = secure_stack.state.ports["kafka_controller"], _secrets(secure_stack)
    anonymous = ssl.create_default_context(cafile=str(s.ca_cert))
    with pytest.raises((ssl.SSLError, ConnectionError)):
        _api_versions(port, anonymous)
    # A certificate the CA signed for a server only (no clientAuth) is refused too.
    redis_cert = ssl.create_default_context(cafile=str(s.ca_cert))
    redis_cert.load_cert_chain(s.cert("redis"), s.key("redis"))
    with pytest.raises((ssl.SSLError, ConnectionError)):
        _api_versions(port, redis_cert)
    controller = ssl.create_default_context(cafile=str(s.ca_cert))
    controller.load_cert_chain(s.cert("kafka-controller"), s.key("kafka-controller"))
    assert _api_versions(port, controller)[4:8] == struct.pack(">i", 1)  # correlation id


# Redis -------------------------------------------------------------------------------
@pytest.fixture
def prefix() -> str:
    """A fresh key prefix inside the stack's ACL glob (dm*)."""
    return f"dm_{uuid.uuid4().hex[:8]}"


def _redis(stack: SecureStack, user: str, password: str | None = None) -> redis.Redis:
    env = stack.env(user)
    if password is None:
        password = Path(env["DEMANDMON_REDIS_PASSWORD_FILE"]).read_text().strip()
    return redis.Redis.from_url(
        env["DEMANDMON_REDIS_URL"],
        username=env["DEMANDMON_REDIS_USERNAME"],
        password=password,
        ssl_ca_certs=env["DEMANDMON_REDIS_CA_FILE"],
        ssl_cert_reqs="required",
        socket_timeout=5,
        socket_connect_timeout=5,
        # redis-py counts a refused login as a connection error and retries it for ~4 s.
        retry=Retry(NoBackoff(), 0),
    )


@pytest.fixture
def clients(secure_stack: SecureStack) -> Iterator[dict[str, redis.Redis]]:
    made = {role: _redis(secure_stack, role) for role in ROLES}
    yield made
    for client in made.values():
        client.close()


# NOPERM for a command or key; inside a script: "can't run this command or subcommand".
DENIED = r"(?i)no permissions|can't run this command"
WRITE = "return redis.call('SET', KEYS[1], ARGV[1])"
READ = "return redis.call('GET', KEYS[1])"


def test_redis_refuses_plain_tcp_the_default_user_and_a_wrong_password(
    secure_stack: SecureStack,
) -> None:
    port = secure_stack.state.ports["redis"]

    def once(**options: Any) -> redis.Redis:  # refused at once: no retries
        return redis.Redis(
            host="127.0.0.1", port=port, socket_timeout=1, retry=Retry(NoBackoff(), 0), **options
        )

    with pytest.raises(redis.ConnectionError):
        once().ping()  # plain TCP to the TLS port
    with pytest.raises((redis.AuthenticationError, redis.ResponseError)):
        once(ssl=True, ssl_ca_certs=_ca(secure_stack)).get("dm:x")  # nobody: default user
    with pytest.raises(redis.AuthenticationError):
        once(ssl=True, ssl_ca_certs=_ca(secure_stack), username="default", password="").ping()
    with pytest.raises(redis.AuthenticationError):
        _redis(secure_stack, "admin", password="not-the-password").ping()


def test_redis_readers_read_under_the_prefix_and_cannot_write(
    clients: dict[str, redis.Redis], prefix: str
) -> None:
    clients["worker"].set(f"{prefix}:k", "v")
    clients["worker"].hset(f"{prefix}:h", "f", "1")
    for role in ("exporter", "reader"):
        client = clients[role]
        assert client.get(f"{prefix}:k") == b"v"
        assert client.hgetall(f"{prefix}:h") == {b"f": b"1"}
        assert client.eval(READ, 1, f"{prefix}:k") == b"v"
        script = client.register_script("return redis.call('HGET', KEYS[1], ARGV[1])")
        assert script(keys=[f"{prefix}:h"], args=["f"]) == b"1"  # EVALSHA, SCRIPT LOAD
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.set(f"{prefix}:k", "changed")
        with pytest.raises(redis.ResponseError, match=DENIED):
            client.eval(WRITE, 1, f"{prefix}:k", "changed")  # a write inside a script
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.get("elsewhere:k")
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.scan()
    assert clients["admin"].get(f"{prefix}:k") == b"v"


def test_redis_worker_writes_under_the_prefix_only_and_nothing_dangerous(
    clients: dict[str, redis.Redis], prefix: str
) -> None:
    worker = clients["worker"]
    assert worker.set(f"{prefix}:a", "1")
    assert worker.eval(WRITE, 1, f"{prefix}:b", "2") == b"OK"
    pipe = worker.pipeline(transaction=False)
    script = worker.register_script("return redis.call('INCR', KEYS[1])")
    pipe.hset(f"{prefix}:h", "f", 1)
    script(keys=[f"{prefix}:n"], client=pipe)
    assert pipe.execute() == [1, 1]
    with pytest.raises(redis.exceptions.NoPermissionError):
        worker.set("elsewhere:a", "1")
    with pytest.raises(redis.ResponseError, match=DENIED):
        worker.eval(WRITE, 1, "elsewhere:b", "2")
    for dangerous in (worker.flushall, worker.flushdb, lambda: worker.keys("*")):
        with pytest.raises(redis.exceptions.NoPermissionError):
            dangerous()
    with pytest.raises(redis.exceptions.NoPermissionError):
        worker.config_get("*")
    for admin_command in (worker.info, worker.client_list, worker.acl_list):
        with pytest.raises(redis.exceptions.NoPermissionError):
            admin_command()
    with pytest.raises(redis.exceptions.NoPermissionError):
        worker.publish("chan", "x")


def test_redis_replay_touches_only_the_registry_and_its_records(
    clients: dict[str, redis.Redis], prefix: str
) -> None:
    from demandmon.state import keys
    from demandmon.state.registry import register

    replay = clients["replay"]
    # What `demandmon replay` does: register (one EVAL on <prefix>:registry), then record
    # what it sent (HINCRBY <prefix>:replay:<source>).
    done = register(replay, prefix, "nov-2023", 20)
    assert not done.refused and done.status == 1
    assert replay.hincrby(keys.replay(prefix, "nov-2023"), "sent", 5) == 5
    assert replay.sismember(keys.registry(prefix), "nov-2023")
    assert replay.hget(keys.replay(prefix, "nov-2023"), "sent") == b"5"
    clients["worker"].hset(f"{prefix}:{{live:0}}:meta", "wm", 1)
    for forbidden in (
        lambda: replay.hget(f"{prefix}:{{live:0}}:meta", "wm"),  # state: not its keys
        lambda: replay.smembers(keys.sources(prefix)),
        lambda: replay.get(f"{prefix}:registry"),  # not one of its commands
        lambda: replay.delete(keys.registry(prefix)),
        lambda: replay.hincrby("elsewhere:replay:x", "sent", 1),
        lambda: replay.eval(
            "return redis.call('SADD', KEYS[1], 'x')", 1, keys.sources(prefix)
        ),  # its script may not reach other keys either
    ):
        with pytest.raises(redis.ResponseError, match=DENIED):
            forbidden()


def test_redis_admin_has_the_prefix_but_nothing_dangerous(
    clients: dict[str, redis.Redis], prefix: str
) -> None:
    admin = clients["admin"]
    admin.set(f"{prefix}:x", "1")
    assert f"{prefix}:x".encode() in list(admin.scan_iter(match=f"{prefix}:*"))
    assert admin.unlink(f"{prefix}:x") == 1
    with pytest.raises(redis.exceptions.NoPermissionError):
        admin.flushall()
    with pytest.raises(redis.exceptions.NoPermissionError):
        admin.set("elsewhere:x", "1")


# Prometheus and Alertmanager ----------------------------------------------------------
def _https(
    stack: SecureStack,
    url: str,
    user: str | None = None,
    password: str | None = None,
    method: str = "GET",
    body: bytes | None = None,
) -> tuple[int, str]:
    context = ssl.create_default_context(cafile=_ca(stack))
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )
    request = urllib.request.Request(url, method=method, data=body)
    if body is not None:
        request.add_header("Content-Type", "application/json")
    if user is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with opener.open(request, timeout=10) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def _web_password(stack: SecureStack) -> str:
    return Path(stack.env()["DEMANDMON_PROMETHEUS_PASSWORD_FILE"]).read_text().strip()


@pytest.mark.parametrize("service", ["PROMETHEUS", "ALERTMANAGER"])
def test_web_services_want_tls_and_basic_auth(secure_stack: SecureStack, service: str) -> None:
    env = secure_stack.env()
    url = env[f"DEMANDMON_{service}_URL"]
    assert url.startswith("https://127.0.0.1:")
    api = "/api/v1/status/buildinfo" if service == "PROMETHEUS" else "/api/v2/status"
    user = env["DEMANDMON_PROMETHEUS_USERNAME"]
    assert _https(secure_stack, url + api)[0] == 401
    assert _https(secure_stack, url + api, user, "not-the-password")[0] == 401
    assert _https(secure_stack, url + api, "someone", _web_password(secure_stack))[0] == 401
    assert _https(secure_stack, url + "/-/ready", user, _web_password(secure_stack))[0] == 200
    status, body = _https(secure_stack, url + api, user, _web_password(secure_stack))
    assert status == 200 and body
    # Plain HTTP reaches a TLS server: refused, nothing served.
    plain = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with pytest.raises(urllib.error.HTTPError) as refused:
        plain.open(url.replace("https://", "http://") + api, timeout=5).close()
    assert refused.value.code == 400
    assert "HTTPS server" in refused.value.read().decode()


def test_prometheus_has_no_lifecycle_api_and_reloads_by_signal(
    secure_stack: SecureStack, tmp_path: Path
) -> None:
    url = secure_stack.env()["DEMANDMON_PROMETHEUS_URL"]
    user, password = "demandmon", _web_password(secure_stack)
    status, _ = _https(secure_stack, url + "/-/quit", user, password, method="POST")
    assert status in (403, 404, 405)
    status, _ = _https(secure_stack, url + "/-/reload", user, password, method="POST")
    assert status in (403, 404, 405)
    assert _https(secure_stack, url + "/-/ready", user, password)[0] == 200  # still up
    # reload_prometheus (tests swap rule folders with it) works by SIGHUP.
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "x.yml").write_text(
        "groups:\n- name: secure-reload-probe\n  rules:\n"
        "  - record: probe:one\n    expr: vector(1)\n"
    )
    state, layout = secure_stack.state, secure_stack.layout
    state.rules_dir = str(rules)
    try:
        reload_prometheus(layout, state)
        _, body = _https(secure_stack, url + "/api/v1/rules", user, password)
        groups = [g["name"] for g in json.loads(body)["data"]["groups"]]
        assert groups == ["secure-reload-probe"]
    finally:
        state.rules_dir = ""
        reload_prometheus(layout, state)
    _, body = _https(secure_stack, url + "/api/v1/rules", user, password)
    assert "secure-reload-probe" not in body


class _TlsApp:
    """An HTTPS server on 127.0.0.1 with the stack's web certificate (what the worker, the
    exporter and its /alerts serve), recording each request's path and Authorization."""

    def __init__(self, stack: SecureStack, port: int, reply: bytes = b"") -> None:
        seen: list[tuple[str, str]] = []
        self.seen = seen

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                seen.append((self.path, self.headers.get("Authorization", "")))
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            do_GET = do_POST = _answer

            def log_message(self, *args: Any) -> None:
                pass

        s = _secrets(stack)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(s.cert("web"), s.key("web"))
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_prometheus_scrapes_over_https_with_the_metrics_user(secure_stack: SecureStack) -> None:
    env = secure_stack.env()
    metrics = b"# TYPE secure_probe gauge\nsecure_probe 1\n"
    app = _TlsApp(secure_stack, int(env["DEMANDMON_WORKER_WEB_PORT"]), metrics)
    try:
        url, user, password = (
            env["DEMANDMON_PROMETHEUS_URL"],
            "demandmon",
            _web_password(secure_stack),
        )

        def worker_target() -> dict[str, Any]:
            _, body = _https(secure_stack, url + "/api/v1/targets", user, password)
            [target] = [
                t
                for t in json.loads(body)["data"]["activeTargets"]
                if t["labels"]["job"] == "demandmon-worker"
            ]
            return dict(target)

        target = wait_for(worker_target, lambda t: t["health"] == "up", 20, "a worker scrape")
        assert target["scrapeUrl"].startswith("https://127.0.0.1:")
        metrics_password = Path(env["DEMANDMON_METRICS_PASSWORD_FILE"]).read_text().strip()
        expected = base64.b64encode(f"prometheus:{metrics_password}".encode()).decode()
        assert ("/metrics", f"Basic {expected}") in app.seen
    finally:
        app.close()


def test_alertmanager_webhook_sends_the_token_over_https(secure_stack: SecureStack) -> None:
    """Alertmanager's receivers carry http_config: the alerts token from its file, the
    CA. (The route's group_wait makes this the slowest test here: about 10 s.)"""
    env = secure_stack.env()
    app = _TlsApp(secure_stack, secure_stack.webhook_port)
    try:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        alert = {
            "labels": {"alertname": f"SecureProbe{uuid.uuid4().hex[:6]}", "severity": "critical"},
            "startsAt": now,
        }
        status, _ = _https(
            secure_stack,
            env["DEMANDMON_ALERTMANAGER_URL"] + "/api/v2/alerts",
            "demandmon",
            _web_password(secure_stack),
            method="POST",
            body=json.dumps([alert]).encode(),
        )
        assert status == 200
        wait_for(lambda: list(app.seen), bool, 40, "the webhook to be called")
        token = Path(env["DEMANDMON_ALERTS_TOKEN_FILE"]).read_text().strip()
        path, authorization = app.seen[0]
        assert path == "/alerts"
        assert authorization == f"Bearer {token}"
    finally:
        app.close()
