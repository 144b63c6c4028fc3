"""`demandmon exporter`: serve /metrics from Redis, /open-incidents (a source's open
incidents as JSON), and /alerts, a webhook receiver that logs what Alertmanager delivers
(alert name, severity, BCU, source, status only).

HTTPS when DEMANDMON_WEB_TLS_CERT_FILE and _KEY_FILE are set; /metrics and /open-incidents
require basic auth when DEMANDMON_METRICS_USERNAME is set; /alerts requires
`Authorization: Bearer <token>` when DEMANDMON_ALERTS_TOKEN is set, and without a token
answers on a loopback bind only; /healthz is open (it says nothing)."""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import json
import logging
import re
import ssl
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import redis
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import ThreadingWSGIServer

from demandmon.arguments import CommandParser
from demandmon.baseline.read import BaselineCache, HourSums
from demandmon.clients import ClientSetupError, redis_client, redis_failure
from demandmon.exporter.cache import CachedStateReader
from demandmon.exporter.collector import DemandCollector
from demandmon.exporter.exposition import metrics_app
from demandmon.exporter.open_route import PATH as OPEN_INCIDENTS
from demandmon.exporter.open_route import open_incidents_app
from demandmon.settings import Settings, settings_or_exit
from demandmon.web import metrics_auth_ok, server_ssl_context, web_scheme

log = logging.getLogger("demandmon.exporter")
ALERT_FIELDS = ("alertname", "severity", "bcu", "source")
MAX_ALERT_BODY = 1 << 20  # 1 MiB
MAX_VALUE_CHARS = 64
MAX_LOGGED_ALERTS = 100  # per delivery; the rest are counted in one line
_UNSAFE = re.compile(r"[^A-Za-z0-9_.:-]")
_DIGITS = re.compile(r"[0-9]+")
REQUEST_TIMEOUT_S = 30.0

StartResponse = Callable[..., Any]
Environ = dict[str, Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]


class _QuietHandler(WSGIRequestHandler):
    # A client that stops talking (or never finishes the TLS handshake) is dropped.
    timeout = REQUEST_TIMEOUT_S

    def setup(self) -> None:
        super().setup()
        # The handshake happens here, in the request's thread, not in the accept loop.
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.do_handshake()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingWSGIServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A failed handshake or a dropped client: no traceback, nothing from the request.
        error = sys.exc_info()[1]
        log.debug("a request failed (%s)", type(error).__name__)


def redis_problem(settings: Settings) -> str | None:
    """Ask Redis once at start: a wrong password or certificate, or a refused port
    (nothing listens there: a wrong URL, or no stack), stops the exporter with one line;
    Redis merely not answering yet does not (scrapes show it as down)."""
    try:
        client = redis_client(settings, timeout_s=5)  # a cluster client connects here
        try:
            client.ping()
        finally:
            client.close()
    except redis.RedisError as exc:
        failure = redis_failure(settings, exc)
        if not failure.retry or failure.refused:
            return failure.line
        log.warning("%s (scrapes report it down until it answers)", failure.line)
    return None


def build_collector(settings: Settings) -> DemandCollector:
    """The collector over the exporter's reader, which keeps what has not changed between
    scrapes (demandmon/exporter/cache.py), and expected demand (demandmon/baseline)."""
    client = redis_client(settings, timeout_s=10)
    reader = CachedStateReader(client, settings.key_prefix)
    return DemandCollector(reader, expected=BaselineCache(HourSums(reader, reader.hour_counts)))


def build_registry(collector: DemandCollector) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(collector)
    return registry


def clean(value: object) -> str:
    """A value as it may appear in a log line: only [A-Za-z0-9_.:-], at most 64
    characters, so no control character, escape sequence, newline or free text."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, int | float):
        text = str(value)
    else:
        text = ""
    return _UNSAFE.sub("", text)[:MAX_VALUE_CHARS] or "-"


def alert_lines(payload: object) -> list[str]:
    """One line per alert, from allow-listed labels only, each value cleaned."""
    if not isinstance(payload, dict):
        return []
    alerts = payload.get("alerts")
    lines = []
    for alert in alerts if isinstance(alerts, list) else []:
        if not isinstance(alert, dict):
            continue
        labels = alert.get("labels")
        labels = labels if isinstance(labels, dict) else {}
        shown = " ".join(f"{k}={clean(labels[k])}" for k in ALERT_FIELDS if k in labels)
        lines.append(f"alert {clean(alert.get('status'))}: {shown}")
    if len(lines) > MAX_LOGGED_ALERTS:
        more = len(lines) - MAX_LOGGED_ALERTS
        lines = [*lines[:MAX_LOGGED_ALERTS], f"alert: {more} more in this delivery not logged"]
    return lines


def is_loopback(host: str) -> bool:
    """Whether a bind address is reachable from this host only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bearer_ok(header: str | None, token: str) -> bool:
    """Whether an Authorization header carries this bearer token (constant time)."""
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def _reply(
    start_response: StartResponse,
    status: str,
    body: str,
    headers: Iterable[tuple[str, str]] = (),
) -> list[bytes]:
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"), *headers])
    return [body.encode()]


def body_length(environ: Environ) -> int | str:
    """The request body's length, or the status refusing it: a body is read only with a
    valid Content-Length of at most 1 MiB."""
    raw = environ.get("CONTENT_LENGTH")
    if raw is None or raw == "":
        return "411 Length Required"
    if not isinstance(raw, str) or not _DIGITS.fullmatch(raw):
        return "400 Bad Request"
    if len(raw) > 9 or int(raw) > MAX_ALERT_BODY:
        return "413 Request Entity Too Large"
    return int(raw)


def build_app(
    registry: CollectorRegistry,
    settings: Settings,
    loopback: bool = True,
    collector: DemandCollector | None = None,
    open_list: WsgiApp | None = None,
) -> WsgiApp:
    """The exporter's WSGI app; ``loopback``: whether the server binds a loopback address
    only (then /alerts may go without a token, as on the plain local stack);
    ``collector``: the registry's only collector, which then writes /metrics itself
    (demandmon/exporter/exposition.py); ``open_list``: /open-incidents (by default read
    from the settings' Redis, connected on first use; demandmon/exporter/open_route.py)."""
    metrics = metrics_app(registry, collector.exposition if collector is not None else None)
    token = settings.alerts_token.get_secret_value()
    refused_warned = threading.Event()
    if open_list is None:
        open_list = open_incidents_app(lambda: redis_client(settings), settings.key_prefix)

    def alerts(environ: Environ, start_response: StartResponse) -> list[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            return _reply(
                start_response, "405 Method Not Allowed", "POST only\n", [("Allow", "POST")]
            )
        if token:
            if not bearer_ok(environ.get("HTTP_AUTHORIZATION"), token):
                challenge = ("WWW-Authenticate", 'Bearer realm="demandmon"')
                return _reply(start_response, "401 Unauthorized", "token required\n", [challenge])
        elif not loopback:
            if not refused_warned.is_set():
                refused_warned.set()
                log.warning(
                    "refusing /alerts: the exporter listens beyond loopback and no "
                    "DEMANDMON_ALERTS_TOKEN is set"
                )
            return _reply(start_response, "403 Forbidden", "no alerts token configured\n")
        length = body_length(environ)
        if isinstance(length, str):
            return _reply(start_response, length, "Content-Length of at most 1 MiB required\n")
        try:
            payload = json.loads(environ["wsgi.input"].read(length))
        except (ValueError, UnicodeDecodeError):
            return _reply(start_response, "400 Bad Request", "JSON expected\n")
        for line in alert_lines(payload):
            log.warning(line)
        return _reply(start_response, "200 OK", "ok\n")

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/alerts":
            return alerts(environ, start_response)
        if path == "/healthz":
            return _reply(start_response, "200 OK", "ok\n")
        if not metrics_auth_ok(settings, environ.get("HTTP_AUTHORIZATION")):
            challenge = ("WWW-Authenticate", 'Basic realm="demandmon"')
            return _reply(
                start_response, "401 Unauthorized", "authentication required\n", [challenge]
            )
        if path == OPEN_INCIDENTS:
            return open_list(environ, start_response)
        return metrics(environ, start_response)

    return app


def make_exporter_server(
    app: WsgiApp, host: str, port: int, context: ssl.SSLContext | None
) -> ThreadingWSGIServer:
    """The threaded WSGI server, HTTPS with ``context``: each connection's handshake runs
    in its own thread, so a client that never finishes one holds up nobody else."""
    server = make_server(host, port, app, server_class=_Server, handler_class=_QuietHandler)
    if context is not None:
        server.socket = context.wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )
    return server


def main(argv: list[str]) -> int:
    parser = CommandParser(prog="demandmon exporter", description=__doc__)
    parser.add_argument("--port", type=int, default=None, help="listen port")
    parser.add_argument("--host", default="127.0.0.1", help="listen address (127.0.0.1)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = settings_or_exit("demandmon exporter", "exporter")
    port = args.port if args.port is not None else settings.exporter_port
    try:
        context = server_ssl_context(settings)
    except ClientSetupError as exc:
        print(f"demandmon exporter: {exc}", file=sys.stderr)
        return 1
    problem = redis_problem(settings)
    if problem is not None:
        print(f"demandmon exporter: {problem}", file=sys.stderr)
        return 1
    collector = build_collector(settings)
    registry = build_registry(collector)
    app = build_app(registry, settings, loopback=is_loopback(args.host), collector=collector)
    try:
        server = make_exporter_server(app, args.host, port, context)
    except OSError as exc:
        print(f"demandmon exporter: cannot listen on {args.host}:{port}: {exc}", file=sys.stderr)
        return 1
    log.info("serving /metrics on %s://%s:%d", web_scheme(settings), args.host, port)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0
