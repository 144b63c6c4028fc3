"""The exporter's own /metrics body (demandmon/exporter/exposition.py) is what
prometheus_client's encoders write for the same collector, byte for byte, in every format
a scraper may ask for; anything but a plain GET goes through prometheus_client."""

from __future__ import annotations

import gzip
import io
import re
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import choose_encoder

from demandmon.exporter.collector import DemandCollector
from demandmon.exporter.exposition import MAX_FORMATS, metrics_app
from demandmon.exporter.server import build_app
from tests.unit.test_collector import NOW_S, FakeReader, figures
from tests.unit.test_exporter_app import METRICS_PASSWORD, _basic, _settings, call

ACCEPTS = [
    None,
    "text/plain;version=0.0.4",
    "application/openmetrics-text;version=1.0.0",
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
    "application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=0.0.4;q=0.3",
    "text/plain;version=1.0.0;escaping=underscores",
]
_DURATION = re.compile(rb"(demand_exporter_scrape_duration_seconds) \S+")


def _timeless(body: bytes) -> bytes:
    return _DURATION.sub(rb"\1 D", body)


def _collector() -> tuple[DemandCollector, CollectorRegistry, FakeReader]:
    reader = FakeReader({"live": figures("live", 7), "nov-2023": figures("nov-2023", 11)})
    collector = DemandCollector(reader, clock=lambda: NOW_S)
    registry = CollectorRegistry()
    registry.register(collector)
    return collector, registry, reader


@pytest.mark.parametrize("accept", ACCEPTS)
def test_the_body_is_what_prometheus_client_writes(accept: str | None) -> None:
    collector, registry, _ = _collector()
    encoder, content_type = choose_encoder(accept or "")
    body, mine = collector.exposition(accept)
    assert mine == content_type
    assert _timeless(body) == _timeless(encoder(registry))
    # Again from what the first scrape rendered.
    assert _timeless(collector.exposition(accept)[0]) == _timeless(encoder(registry))


def test_redis_down_is_the_exporter_gauges_alone() -> None:
    collector, registry, reader = _collector()
    reader.failure = ConnectionError("gone")
    body, _ = collector.exposition(None)
    encoder, _ = choose_encoder("")
    assert _timeless(body) == _timeless(encoder(registry))
    assert b"demand_exporter_redis_up 0.0" in body and b"demand_rcrp" not in body


def test_lines_are_rendered_again_only_for_figures_that_changed() -> None:
    collector, _, reader = _collector()
    collector.exposition(None)
    first = dict(collector._rendered)
    collector.exposition(None)
    assert all(collector._rendered[s] is first[s] for s in first)
    # The same windows with new gauges: the window lines are kept, the rest re-rendered.
    live = reader.by_source["live"]
    reader.by_source["live"] = replace(live, window_end_s=NOW_S + 1)
    body, _ = collector.exposition(None)
    again = collector._rendered["live"]
    assert again.windows is first["live"].windows and again.state is not first["live"].state
    assert b'demand_stream_window_end_timestamp_seconds{source="live"} 1.700000001e+09' in body
    # A source gone: its lines too.
    del reader.by_source["nov-2023"]
    collector.exposition(None)
    assert set(collector._rendered) == {"live"}


def _get(
    app: Any, method: str = "GET", query: str = "", **headers: str
) -> tuple[str, dict[str, str], bytes]:
    seen: dict[str, Any] = {}

    def start_response(status: str, response_headers: Iterable[tuple[str, str]]) -> None:
        seen["status"], seen["headers"] = status, dict(response_headers)

    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": "/metrics",
        "QUERY_STRING": query,
        "wsgi.input": io.BytesIO(),
        **{f"HTTP_{k.upper()}": v for k, v in headers.items()},
    }
    body = b"".join(app(environ, start_response))
    return seen["status"], seen["headers"], body


def test_the_app_gzips_when_asked_and_leaves_the_rest_to_prometheus_client() -> None:
    collector, registry, _ = _collector()
    app = metrics_app(registry, collector.exposition)
    status, headers, body = _get(app, accept_encoding="gzip")
    assert status == "200 OK" and headers["Content-Encoding"] == "gzip"
    plain = _get(app)[2]
    assert _timeless(gzip.decompress(body)) == _timeless(plain)
    assert _get(app, method="OPTIONS")[1]["Allow"] == "OPTIONS,GET"
    query = "name[]=demand_exporter_redis_up"
    assert _get(app, query=query) == _get(make_wsgi_app(registry), query=query)


def test_formats_kept_stay_few_whatever_clients_ask_for() -> None:
    collector, _, _ = _collector()
    for minor in range(50):
        accept = f"application/openmetrics-text;version=1.0.{minor}"
        body, content_type = collector.exposition(accept)
        assert f"version=1.0.{minor}" in content_type and body.endswith(b"# EOF\n")
    assert len(collector._exposition._headers) <= MAX_FORMATS


def test_the_exporter_app_serves_the_fast_body_behind_its_basic_auth() -> None:
    collector, registry, _ = _collector()
    settings = _settings(metrics_username="prometheus", metrics_password=METRICS_PASSWORD)
    app = build_app(registry, settings, collector=collector)
    status, _, body, _ = call(app, "/metrics")
    assert status == 401 and b"demand_" not in body
    good = _basic("prometheus", METRICS_PASSWORD)
    status, headers, body, _ = call(app, "/metrics", authorization=good)
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert b'demand_rcrp_incidents{bcu="SE",category="mental_health",source="live"' in body
