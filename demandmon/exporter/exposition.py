"""/metrics without formatting every sample at every scrape.

prometheus_client formats each sample each time (about 8 µs a sample: 0.3 s for 20
sources) and gzips at level 9 (0.1 s for 3.4 MB). Here each source's sample lines are
rendered once per change of its figures (demandmon/exporter/collector.py keeps them; the
windows' and expected demand's from per-source layouts, demandmon/exporter/lines.py, the
rest through ``render``, which keeps each line's text up to its value and the texts of
values already seen) and a scrape joins them under each metric's HELP and TYPE lines.
Those headers, the exporter's own two gauges and the end of the body are written by
prometheus_client's encoder for the negotiated format, so text 0.0.4 and OpenMetrics come
out byte for byte as its ``generate_latest`` would write them
(tests/unit/test_exposition.py); the sample lines are the same in both formats for these
names and labels. gzip at level 1 when asked for.
Anything but a plain GET (OPTIONS, ``name[]``) is served by prometheus_client itself.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder, gzip_accepted
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from demandmon.exporter.families import HELP, Sample

Encoder = Callable[[Collector], bytes]
SampleLines = Mapping[str, str]  # metric -> its sample lines, each ending in "\n"
GZIP_LEVEL = 1
MAX_FORMATS = 8  # negotiated formats whose headers are kept
MAX_KEPT = 1 << 17  # value texts and line prefixes remembered, at most


def exposed_name(name: str) -> str:
    """A metric's sample name: counters carry ``_total``."""
    return f"{name}_total" if HELP[name][1] == "counter" else name


_EXPOSED = {name: exposed_name(name) for name in HELP}


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


class GoStrings(dict[float, str]):
    """``floatToGoString``, remembered (most figures are small whole numbers). Zero is
    kept as "0.0", which -0.0 (the same key) would wrongly find: callers pass no -0.0
    (``render`` formats both zeros afresh; demandmon/exporter/lines.py checks)."""

    def __init__(self) -> None:
        super().__init__({0.0: "0.0"})

    def __missing__(self, value: float) -> str:
        text: str = floatToGoString(value)  # type: ignore[no-untyped-call]
        if value == value and value != 0:  # NaN never matches; zero is kept already
            if len(self) >= MAX_KEPT:
                self.clear()
                self[0.0] = "0.0"
            self[value] = text
        return text


GO = GoStrings()
_PREFIXES: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}


def line_prefix(name: str, labels: tuple[tuple[str, str], ...]) -> str:
    """A sample line up to its value, as prometheus_client writes it (labels sorted by
    name, escaped), ending in the space before the value."""
    text = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels))
    return f"{_EXPOSED[name]}{{{text}}} "


def _kept_prefix(name: str, labels: tuple[tuple[str, str], ...]) -> str:
    prefix = _PREFIXES.get((name, labels))
    if prefix is None:
        if len(_PREFIXES) >= MAX_KEPT:  # sources come and go: stay bounded
            _PREFIXES.clear()
        prefix = _PREFIXES[name, labels] = line_prefix(name, labels)
    return prefix


def render(samples: Iterable[Sample]) -> dict[str, str]:
    """Sample lines by metric, as prometheus_client writes them (labels sorted by name)."""
    lines: dict[str, list[str]] = {}
    for s in samples:
        value = GO[s.value] if s.value else floatToGoString(s.value)  # type: ignore[no-untyped-call]
        lines.setdefault(s.name, []).append(f"{_kept_prefix(s.name, s.labels)}{value}\n")
    return {name: "".join(chunk) for name, chunk in lines.items()}


def family(name: str, labels: Sequence[str] = ()) -> GaugeMetricFamily | CounterMetricFamily:
    help_text, kind = HELP[name]
    if kind == "counter":
        return CounterMetricFamily(name, help_text, labels=labels)
    return GaugeMetricFamily(name, help_text, labels=labels)


class Metrics(Collector):
    """Fixed metric families, as a collector an encoder can write."""

    def __init__(self, metrics: Iterable[Metric]) -> None:
        self.metrics = list(metrics)

    def collect(self) -> Iterator[Metric]:
        return iter(self.metrics)


class Headers:
    """Per negotiated format: each metric's HELP and TYPE lines, and how the body ends."""

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder
        self.end = encoder(Metrics([])).decode()
        self.of = {name: self.write([family(name)]).removesuffix(self.end) for name in HELP}

    def write(self, metrics: Iterable[Metric]) -> str:
        return self.encoder(Metrics(metrics)).decode()


class Exposition:
    """The fast body: sources' sample lines under headers of the negotiated format."""

    def __init__(self) -> None:
        self._headers: dict[str, Headers] = {}

    def negotiate(self, accept: str | None) -> tuple[Headers, str]:
        encoder, content_type = choose_encoder(accept or "")
        headers = self._headers.get(content_type)
        if headers is None:
            if len(self._headers) >= MAX_FORMATS:  # Accept is the client's: stay bounded
                self._headers.clear()
            headers = self._headers[content_type] = Headers(encoder)
        return headers, content_type

    @staticmethod
    def body(headers: Headers, sources: Sequence[SampleLines], own: Iterable[Metric]) -> bytes:
        """Every metric that has samples, in HELP's order, each source's lines in order;
        then ``own`` (the exporter's gauges) and the format's end, written by the
        encoder."""
        parts: list[str] = []
        for name in HELP:
            chunks = [lines[name] for lines in sources if name in lines]
            if chunks:
                parts.append(headers.of[name])
                parts.extend(chunks)
        parts.append(headers.write(own))
        return "".join(parts).encode()


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
FastBody = Callable[[str | None], tuple[bytes, str]]  # Accept header -> (body, type)


def metrics_app(registry: CollectorRegistry, fast: FastBody | None = None) -> WsgiApp:
    """/metrics: plain GETs from ``fast`` when given (it must write everything
    ``registry`` holds), anything else through prometheus_client's app."""
    slow: WsgiApp = make_wsgi_app(registry)
    if fast is None:
        return slow

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        plain = environ.get("REQUEST_METHOD") == "GET" and not environ.get("QUERY_STRING")
        if not plain or environ.get("PATH_INFO") == "/favicon.ico":
            return slow(environ, start_response)
        body, content_type = fast(environ.get("HTTP_ACCEPT"))
        headers = [("Content-Type", content_type)]
        if gzip_accepted(environ.get("HTTP_ACCEPT_ENCODING") or ""):
            body = gzip.compress(body, compresslevel=GZIP_LEVEL)
            headers.append(("Content-Encoding", "gzip"))
        start_response("200 OK", headers)
        return [body]

    return app
