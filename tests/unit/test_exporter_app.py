"""The exporter's WSGI app, called directly with crafted environs (no network): /healthz is
open, /metrics takes basic auth when a metrics user is set, /alerts takes only POST, a
bearer token (or, without one, a loopback bind), a valid Content-Length of at most 1 MiB
(refused without reading the body, and never read beyond it), and logs allow-listed,
cleaned fields only: no forged log lines."""

from __future__ import annotations

import base64
import io
import json
import logging
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter

from demandmon.exporter.server import (
    MAX_ALERT_BODY,
    MAX_LOGGED_ALERTS,
    WsgiApp,
    alert_lines,
    build_app,
    clean,
    is_loopback,
    make_exporter_server,
)
from demandmon.settings import Settings
from demandmon.web import http_get, server_ssl_context
from tests.unit.pki import Pki, pki_fixture  # noqa: F401  (the "pki" fixture)

TOKEN = "t0ken-of-the-alerts"
METRICS_PASSWORD = "m3trics-pass"


class Body(io.BytesIO):
    """A request body that counts what the app read of it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.read_bytes = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.read_bytes += len(data)
        return data


def _settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    Counter("demo_things", "things", registry=registry).inc()
    return registry


def _app(loopback: bool = True, **values: Any) -> WsgiApp:
    return build_app(_registry(), _settings(**values), loopback=loopback)


def call(
    app: WsgiApp,
    path: str,
    method: str = "GET",
    body: bytes = b"",
    length: str | None = "auto",
    authorization: str | None = None,
) -> tuple[int, dict[str, str], bytes, Body]:
    stream = Body(body)
    environ: dict[str, Any] = {
        "PATH_INFO": path,
        "REQUEST_METHOD": method,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "9464",
        "wsgi.input": stream,
        "wsgi.url_scheme": "http",
    }
    if length == "auto":
        environ["CONTENT_LENGTH"] = str(len(body))
    elif length is not None:
        environ["CONTENT_LENGTH"] = length
    if authorization is not None:
        environ["HTTP_AUTHORIZATION"] = authorization
    seen: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]]) -> None:
        seen["status"] = int(status.split()[0])
        seen["headers"] = dict(response_headers)

    out = b"".join(app(environ, start_response))
    return seen["status"], seen["headers"], out, stream


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _alerts(*labels: dict[str, Any], status: Any = "firing") -> bytes:
    return json.dumps({"alerts": [{"status": status, "labels": x} for x in labels]}).encode()


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """The exporter's log as a real handler writes it, one record per line."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    logger = logging.getLogger("demandmon.exporter")
    logger.addHandler(handler)
    before = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield out
    finally:
        logger.removeHandler(handler)
        logger.setLevel(before)


# -- /healthz and /metrics ---------------------------------------------------------------


def test_healthz_is_open_even_with_credentials_set() -> None:
    app = _app(metrics_username="prometheus", metrics_password=METRICS_PASSWORD, alerts_token=TOKEN)
    status, _, body, _ = call(app, "/healthz")
    assert (status, body) == (200, b"ok\n")


def test_metrics_are_open_without_a_metrics_user() -> None:
    status, _, body, _ = call(_app(), "/metrics")
    assert status == 200
    assert b"demo_things_total 1.0" in body


@pytest.mark.parametrize(
    "authorization",
    [None, _basic("prometheus", "wrong"), _basic("other", METRICS_PASSWORD), f"Bearer {TOKEN}"],
)
def test_metrics_need_basic_auth_when_a_user_is_set(authorization: str | None) -> None:
    app = _app(metrics_username="prometheus", metrics_password=METRICS_PASSWORD)
    status, response_headers, body, _ = call(app, "/metrics", authorization=authorization)
    assert status == 401
    assert response_headers["WWW-Authenticate"] == 'Basic realm="demandmon"'
    assert b"demo_things" not in body


def test_metrics_with_the_right_credentials() -> None:
    app = _app(metrics_username="prometheus", metrics_password=METRICS_PASSWORD)
    good = _basic("prometheus", METRICS_PASSWORD)
    status, _, body, _ = call(app, "/metrics", authorization=good)
    assert status == 200
    assert b"demo_things_total" in body


# -- /alerts: method, token, loopback ----------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "HEAD"])
def test_alerts_take_post_only(method: str) -> None:
    status, headers, _, stream = call(_app(), "/alerts", method=method, body=_alerts({}))
    assert status == 405
    assert headers["Allow"] == "POST"
    assert stream.read_bytes == 0


@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer"]
)
def test_alerts_need_the_token_when_one_is_set(
    authorization: str | None, log_lines: io.StringIO
) -> None:
    body = _alerts({"alertname": "X"})
    status, response_headers, _, stream = call(
        _app(alerts_token=TOKEN), "/alerts", "POST", body, authorization=authorization
    )
    assert status == 401
    assert response_headers["WWW-Authenticate"] == 'Bearer realm="demandmon"'
    assert stream.read_bytes == 0
    assert log_lines.getvalue() == ""


def test_alerts_with_the_token(log_lines: io.StringIO) -> None:
    body = _alerts({"alertname": "X"})
    app = _app(alerts_token=TOKEN, loopback=False)
    status, _, _, _ = call(app, "/alerts", "POST", body, authorization=f"Bearer {TOKEN}")
    assert status == 200
    assert log_lines.getvalue() == "demandmon.exporter alert firing: alertname=X\n"


def test_alerts_without_a_token_work_on_loopback(log_lines: io.StringIO) -> None:
    status, _, _, _ = call(_app(loopback=True), "/alerts", "POST", _alerts({"alertname": "X"}))
    assert status == 200
    assert "alertname=X" in log_lines.getvalue()


def test_alerts_without_a_token_beyond_loopback_are_refused_and_logged_once(
    log_lines: io.StringIO,
) -> None:
    app = _app(loopback=False)
    for _ in range(3):
        status, _, _, stream = call(app, "/alerts", "POST", _alerts({"alertname": "X"}))
        assert status == 403
        assert stream.read_bytes == 0
    lines = log_lines.getvalue().splitlines()
    assert len(lines) == 1
    assert "no DEMANDMON_ALERTS_TOKEN" in lines[0]


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("10.1.2.3", False),
        ("exporter", False),
    ],
)
def test_loopback_binds(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


# -- /alerts: the body -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "status"),
    [
        (None, 411),
        ("", 411),
        ("abc", 400),
        ("-1", 400),
        ("+5", 400),
        (" 5", 400),
        ("1e3", 400),
        ("٣", 400),  # a digit, but not an ASCII one
        (str(MAX_ALERT_BODY + 1), 413),
        ("9" * 40, 413),
    ],
)
def test_a_bad_content_length_is_refused_without_reading(length: str | None, status: int) -> None:
    body = _alerts({"alertname": "X"})
    got, _, _, stream = call(
        _app(alerts_token=TOKEN),
        "/alerts",
        "POST",
        body,
        length,
        authorization=f"Bearer {TOKEN}",
    )
    assert got == status
    assert stream.read_bytes == 0


def test_exactly_one_mib_is_accepted() -> None:
    payload = _alerts({"alertname": "X"})
    body = payload + b" " * (MAX_ALERT_BODY - len(payload))
    status, _, _, stream = call(_app(), "/alerts", "POST", body)
    assert status == 200
    assert stream.read_bytes == MAX_ALERT_BODY


def test_never_reads_beyond_content_length(log_lines: io.StringIO) -> None:
    first = _alerts({"alertname": "Kept"})
    body = first + b"\n" + _alerts({"alertname": "Smuggled"})
    status, _, _, stream = call(_app(), "/alerts", "POST", body, str(len(first)))
    assert status == 200
    assert stream.read_bytes == len(first)
    assert "Kept" in log_lines.getvalue()
    assert "Smuggled" not in log_lines.getvalue()


@pytest.mark.parametrize("body", [b"", b"not json", b"\xff\xfe", b'{"alerts": ['])
def test_a_body_that_is_not_json_is_refused(body: bytes, log_lines: io.StringIO) -> None:
    status, _, _, _ = call(_app(), "/alerts", "POST", body)
    assert status == 400
    assert log_lines.getvalue() == ""


# -- /alerts: what is logged -------------------------------------------------------------


def test_a_forged_newline_in_a_label_cannot_make_a_second_log_line(
    log_lines: io.StringIO,
) -> None:
    forged = {
        "alertname": "RcrpRateHigh\n2026-01-01 demandmon.exporter alert firing: alertname=Fake",
        "bcu": "AW\r\nalert resolved: bcu=XX",
        "severity": "page\x1b[2J\x1b[31m",
        "source": "live\u2028forged\x00",
    }
    status, _, _, _ = call(_app(), "/alerts", "POST", _alerts(forged, status="firing\nforged"))
    assert status == 200
    written = log_lines.getvalue()
    assert written.count("\n") == 1, written
    assert "\x1b" not in written
    assert "\r" not in written
    assert "\u2028" not in written
    assert "\x00" not in written
    line = written.rstrip("\n")
    assert line.startswith("demandmon.exporter alert firingforged: alertname=RcrpRateHigh2026")
    assert " bcu=AWalertresolved:bcuXX" in line


def test_only_allow_listed_fields_are_logged() -> None:
    labels = {
        "alertname": "S136WaitLong",
        "severity": "warning",
        "bcu": "NE",
        "source": "nov-2023",
        "summary": "Jane Doe, 12 High Street",
        "instance": "10.0.0.1:9464",
        "caller_name": "Jane Doe",
    }
    assert alert_lines(json.loads(_alerts(labels, status="resolved"))) == [
        "alert resolved: alertname=S136WaitLong severity=warning bcu=NE source=nov-2023"
    ]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("AW", "AW"),
        ("a b\tc", "abc"),
        ("x" * 100, "x" * 64),
        ("é-ü.ok:1_2", "-.ok:1_2"),
        ("", "-"),
        ("\n\n", "-"),
        (12, "12"),
        (1.5, "1.5"),
        (None, "-"),
        ({"nested": "x"}, "-"),
        (["x"], "-"),
    ],
)
def test_values_are_reduced_to_a_safe_alphabet(value: object, shown: str) -> None:
    assert clean(value) == shown


@pytest.mark.parametrize(
    "payload", [None, [], "x", {"alerts": "x"}, {"alerts": [1, "x", None]}, {"alerts": None}]
)
def test_odd_payloads_log_nothing(payload: object) -> None:
    assert alert_lines(payload) == []


def test_labels_that_are_not_a_mapping_are_ignored() -> None:
    lines = alert_lines({"alerts": [{"status": "firing", "labels": ["alertname", "x"]}]})
    assert lines == ["alert firing: "]


def test_a_flood_of_alerts_is_cut_short() -> None:
    payload = json.loads(_alerts(*({"alertname": f"A{i}"} for i in range(MAX_LOGGED_ALERTS + 50))))
    lines = alert_lines(payload)
    assert len(lines) == MAX_LOGGED_ALERTS + 1
    assert lines[-1] == "alert: 50 more in this delivery not logged"


# -- the server: HTTPS, one thread per handshake -------------------------------------------


@contextmanager
def exporter_https(pki: Pki, **values: Any) -> Iterator[int]:
    settings = _settings(web_tls_cert_file=str(pki.cert), web_tls_key_file=str(pki.key), **values)
    server = make_exporter_server(
        build_app(_registry(), settings), "127.0.0.1", 0, server_ssl_context(settings)
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def test_the_exporter_serves_https_and_survives_bad_clients(pki: Pki) -> None:
    with exporter_https(
        pki, metrics_username="prometheus", metrics_password=METRICS_PASSWORD
    ) as port:
        base = f"https://127.0.0.1:{port}"
        # A client that connects and never shakes hands holds up nobody.
        with socket.create_connection(("127.0.0.1", port)) as silent:
            assert http_get(f"{base}/healthz", ca_file=str(pki.ca), timeout_s=5) == b"ok\n"
            assert silent.fileno() >= 0
        # Plain HTTP on the TLS port gets no HTTP answer.
        with socket.create_connection(("127.0.0.1", port), timeout=5) as plain:
            plain.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
            assert not plain.recv(100).startswith(b"HTTP/")
        # TLS 1.1 is refused.
        old = ssl.create_default_context(cafile=str(pki.ca))
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
        with (
            pytest.raises(ssl.SSLError),
            socket.create_connection(("127.0.0.1", port), timeout=5) as sock,
            old.wrap_socket(sock, server_hostname="127.0.0.1"),
        ):
            pass
        # And it still answers, with the metrics behind basic auth.
        body = http_get(
            f"{base}/metrics",
            ca_file=str(pki.ca),
            username="prometheus",
            password=METRICS_PASSWORD,
        )
        assert b"demo_things_total" in body
        with pytest.raises(OSError, match="401"):
            http_get(f"{base}/metrics", ca_file=str(pki.ca))
