"""The exporter's /open-incidents route, called directly (no network): hostile query
parameters are refused with 400 and a short message that repeats nothing sent, before
Redis is touched; only GET and HEAD; the same basic auth as /metrics."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from demandmon.clients import SyncRedis
from demandmon.exporter.open_route import open_incidents_app
from demandmon.exporter.server import build_app
from demandmon.settings import Settings

HOSTILE = [
    "",  # no source
    "bcu=SE",
    "source=",
    "source=LIVE",
    "source=live%0d%0aX-Injected:%201",
    "source=live&source=nov-2023",
    "source=live&bcu=se",
    "source=live&bcu=SE%00",
    "source=live&bcu=SE&bcu=AW",
    "source=live&grade=I%27%20OR%201=1",
    "source=live&grade=%C3%89",
    "source=%FF%FE",
    "source=live&limit=0",
    "source=live&limit=-5",
    "source=live&limit=5001",
    "source=live&limit=1e9",
    "source=live&limit=99999999999999999999",
    "source=" + "a" * 41,
    "source=../../etc/passwd",
    "source=live&" + "&".join(f"p{i}=1" for i in range(20)),  # too many fields
    "source=live&x=" + "A" * 600,  # too long
    "source=<script>alert(1)</script>",
]


def _untouched() -> SyncRedis:
    raise AssertionError("Redis was asked for a refused request")


def _call(
    app: Any, query: str, method: str = "GET", auth: str | None = None
) -> tuple[str, dict[str, str], bytes]:
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"], seen["headers"] = status, dict(headers)

    environ = {"REQUEST_METHOD": method, "PATH_INFO": "/open-incidents", "QUERY_STRING": query}
    if auth is not None:
        environ["HTTP_AUTHORIZATION"] = auth
    body = b"".join(app(environ, start_response))
    return seen["status"], seen["headers"], body


@pytest.mark.parametrize("query", HOSTILE)
def test_hostile_queries_are_400_without_touching_redis(query: str) -> None:
    status, headers, body = _call(open_incidents_app(_untouched, "dm"), query)
    assert status == "400 Bad Request"
    assert headers["Content-Type"].startswith("text/plain")
    assert len(body) < 120 and body.endswith(b"\n") and body.count(b"\n") == 1
    for fragment in (b"script", b"passwd", b"Injected", b"OR 1", b"AAAA", b"nov-2023"):
        assert fragment not in body


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS"])
def test_only_get_and_head(method: str) -> None:
    status, headers, _ = _call(open_incidents_app(_untouched, "dm"), "source=live", method)
    assert status == "405 Method Not Allowed"
    assert headers["Allow"] == "GET, HEAD"


def test_the_route_takes_the_metrics_basic_auth() -> None:
    values: dict[str, Any] = {"metrics_username": "prometheus", "metrics_password": "pw"}
    settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
    app = build_app(CollectorRegistry(), settings, open_list=open_incidents_app(_untouched, "dm"))
    status, headers, _ = _call(app, "source=live")
    assert status == "401 Unauthorized"
    assert headers["WWW-Authenticate"].startswith("Basic")
    wrong = "Basic " + base64.b64encode(b"prometheus:nope").decode()
    assert _call(app, "source=live", auth=wrong)[0] == "401 Unauthorized"
    right = "Basic " + base64.b64encode(b"prometheus:pw").decode()
    # Through the auth, a refused query is refused by the route itself.
    assert _call(app, "source=LIVE", auth=right)[0] == "400 Bad Request"
