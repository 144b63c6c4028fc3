"""The alerting tests' plumbing on the real stack: a webhook Alertmanager posts to, rules
loaded into the stack's Prometheus for one test, and Alertmanager routing swapped for one
test (groups sent after 1 s), each put back as it was afterwards."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from deploy.stack.services import reload_prometheus
from tests.conftest import Stack


class Webhook:
    def __init__(self, port: int) -> None:
        self.alerts: list[dict[str, Any]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook.alerts.extend(json.loads(body).get("alerts", []))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def firing(self) -> set[tuple[str, str, str]]:
        return {
            (a["labels"]["alertname"], a["labels"].get("source", ""), a["labels"].get("bcu", ""))
            for a in self.alerts
            if a.get("status") == "firing"
        }


@contextmanager
def listening(stack: Stack) -> Iterator[Webhook]:
    """The webhook on the port the stack's Alertmanager posts to."""
    hook = Webhook(stack.webhook_port)
    try:
        yield hook
    finally:
        hook.server.shutdown()
        hook.server.server_close()


@contextmanager
def rules_loaded(stack: Stack, folder: Path, files: dict[str, str]) -> Iterator[None]:
    """The stack's Prometheus evaluates ``files`` (name -> rule file text) instead of the
    rules it had, until the block ends."""
    folder.mkdir()
    for path, text in files.items():
        (folder / Path(path).name).write_text(text)
    stack.state.rules_dir = str(folder)
    reload_prometheus(stack.layout, stack.state)
    try:
        yield
    finally:
        stack.state.rules_dir = ""
        reload_prometheus(stack.layout, stack.state)


def reload_alertmanager(alertmanager: str) -> None:
    request = urllib.request.Request(f"{alertmanager}/-/reload", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


@contextmanager
def alertmanager_routing(stack: Stack, doc: dict[str, Any]) -> Iterator[None]:
    """The stack's Alertmanager runs with the config ``doc``, every route's groups sent
    after 1 s, until the block ends."""
    for route in [doc["route"], *doc["route"]["routes"]]:
        route["group_wait"] = "1s"
    conf = stack.layout.conf("alertmanager.yml")
    original = conf.read_text()
    conf.write_text(yaml.safe_dump(doc))
    reload_alertmanager(stack.alertmanager)
    try:
        yield
    finally:
        conf.write_text(original)
        reload_alertmanager(stack.alertmanager)
