"""`demandmon exporter`: serve /metrics from Redis, and /alerts, a webhook receiver that
logs what Alertmanager delivers (alert name, severity, BCU, source, status only)."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import redis
from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from demandmon.cliargs import CommandParser
from demandmon.exporter.collector import DemandCollector
from demandmon.settings import Settings, settings_or_exit
from demandmon.state.reader import StateReader

log = logging.getLogger("demandmon.exporter")
ALERT_FIELDS = ("alertname", "severity", "bcu", "source")

StartResponse = Callable[..., Any]
Environ = dict[str, Any]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def build_registry(settings: Settings) -> CollectorRegistry:
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=10)
    registry = CollectorRegistry()
    registry.register(DemandCollector(StateReader(client, settings.key_prefix)))
    return registry


def alert_lines(payload: object) -> list[str]:
    """One line per alert, from allow-listed labels only."""
    if not isinstance(payload, dict):
        return []
    lines = []
    for alert in payload.get("alerts", []):
        if not isinstance(alert, dict):
            continue
        labels = alert.get("labels", {})
        shown = " ".join(f"{k}={labels[k]}" for k in ALERT_FIELDS if k in labels)
        lines.append(f"alert {alert.get('status', '?')}: {shown}")
    return lines


def build_app(registry: CollectorRegistry) -> Callable[[Environ, StartResponse], Iterable[bytes]]:
    metrics = make_wsgi_app(registry)

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/alerts" and environ.get("REQUEST_METHOD") == "POST":
            size = int(environ.get("CONTENT_LENGTH") or 0)
            try:
                payload = json.loads(environ["wsgi.input"].read(min(size, 1 << 20)))
            except (ValueError, UnicodeDecodeError):
                payload = None
            for line in alert_lines(payload):
                log.warning(line)
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok\n"]
        if path == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok\n"]
        return metrics(environ, start_response)  # type: ignore[no-any-return]

    return app


def main(argv: list[str]) -> int:
    parser = CommandParser(prog="demandmon exporter", description=__doc__)
    parser.add_argument("--port", type=int, default=None, help="listen port on 127.0.0.1")
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = settings_or_exit("demandmon exporter")
    port = args.port if args.port is not None else settings.exporter_port
    try:
        server = make_server(
            args.host,
            port,
            build_app(build_registry(settings)),
            server_class=ThreadingWSGIServer,
            handler_class=_QuietHandler,
        )
    except OSError as exc:
        print(f"demandmon exporter: cannot listen on {args.host}:{port}: {exc}", file=sys.stderr)
        return 1
    log.info("serving /metrics on http://%s:%d", args.host, port)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0
