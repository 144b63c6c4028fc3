"""The exporter's GET /open-incidents?source=S[&bcu=B][&grade=G][&limit=N]: a source's
open incidents as JSON, oldest first, each {"incident_id", "bcu", "category", "grade",
"age_seconds", "attended", "past_target"} (demandmon/state/open_list.py; no free text),
for the BCU detail dashboard's table through a JSON datasource. The same auth as /metrics
(demandmon/exporter/server.py checks it before routing here).

Query parameters are checked against the vocabulary's allow-lists and refused with 400
and a short message that never repeats what was sent; a source that is neither live nor
registered is 404. At most ``limit`` rows (500 by default, 5000 at most), the oldest;
headers say how many are open in all (``X-Open-Incidents-Total``) and whether the array
was cut (``X-Open-Incidents-Truncated``)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Final
from urllib.parse import parse_qs

import redis

from demandmon.clients import SyncRedis
from demandmon.state.open_list import DEFAULT_LIMIT, as_json, check_filters, check_limit
from demandmon.state.open_read import read_open, source_known

log = logging.getLogger("demandmon.exporter")
PATH: Final = "/open-incidents"
PARAMETERS: Final = ("source", "bcu", "grade", "limit")
MAX_QUERY_CHARS: Final = 512
MAX_FIELDS: Final = 8

StartResponse = Callable[..., Any]
Environ = dict[str, Any]


def _text(start_response: StartResponse, status: str, body: str) -> list[bytes]:
    start_response(
        status, [("Content-Type", "text/plain; charset=utf-8"), ("Cache-Control", "no-store")]
    )
    return [body.encode()]


def parse_query(query: str) -> dict[str, str] | str:
    """The query's parameters, or why it is refused: each known parameter at most once,
    ASCII, the query short; unknown parameters are ignored (datasource plugins add their
    own), but count against the field limit."""
    if len(query) > MAX_QUERY_CHARS:
        return "query too long"
    try:
        parsed = parse_qs(
            query,
            keep_blank_values=True,
            max_num_fields=MAX_FIELDS,
            encoding="ascii",
            errors="strict",
        )
    except (ValueError, UnicodeDecodeError):
        return "query not understood"
    out: dict[str, str] = {}
    for name in PARAMETERS:
        values = parsed.get(name)
        if values is None:
            continue
        if len(values) != 1:
            return f"{name} given more than once"
        out[name] = values[0]
    return out


def check(params: dict[str, str]) -> tuple[str, str | None, str | None, int] | str:
    """(source, bcu, grade, limit), or why the parameters are refused."""
    source = params.get("source")
    if not source:
        return "source required"
    limit = check_limit(params.get("limit", str(DEFAULT_LIMIT)))
    if isinstance(limit, str):
        return limit
    bcu, grade = params.get("bcu") or None, params.get("grade") or None
    problem = check_filters(source, bcu, grade)
    return problem if problem else (source, bcu, grade, limit)


def open_incidents_app(
    connect: Callable[[], SyncRedis], prefix: str, clock: Callable[[], float] = time.time
) -> Callable[[Environ, StartResponse], Iterable[bytes]]:
    """The route's WSGI handler; ``connect`` makes its Redis client on first use."""
    lock = threading.Lock()
    clients: list[SyncRedis] = []

    def client() -> SyncRedis:
        with lock:
            if not clients:
                clients.append(connect())
            return clients[0]

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            start_response(
                "405 Method Not Allowed",
                [("Content-Type", "text/plain; charset=utf-8"), ("Allow", "GET, HEAD")],
            )
            return [b"GET only\n"]
        params = parse_query(str(environ.get("QUERY_STRING", "")))
        checked = check(params) if isinstance(params, dict) else params
        if isinstance(checked, str):
            return _text(start_response, "400 Bad Request", checked + "\n")
        source, bcu, grade, limit = checked
        try:
            redis_client = client()
            if not source_known(redis_client, prefix, source):
                return _text(start_response, "404 Not Found", "unknown source\n")
            listing = read_open(
                redis_client, prefix, source, clock(), bcu=bcu, grade=grade, limit=limit
            )
        except redis.RedisError as exc:
            log.warning("/open-incidents: Redis not readable (%s)", type(exc).__name__)
            return _text(start_response, "503 Service Unavailable", "Redis not readable\n")
        body = (as_json(listing) + "\n").encode()
        start_response(
            "200 OK",
            [
                ("Content-Type", "application/json"),
                ("Cache-Control", "no-store"),
                ("X-Open-Incidents-Total", str(listing.total)),
                ("X-Open-Incidents-Truncated", "true" if listing.truncated else "false"),
                ("Content-Length", str(len(body))),
            ],
        )
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]

    return app
