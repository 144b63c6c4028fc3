"""HTTP(S) requests to the stack's own services on 127.0.0.1: never through a proxy named
in the environment, TLS verified against the stack's CA, basic auth when asked."""

from __future__ import annotations

import base64
import ssl
import urllib.request
from dataclasses import dataclass
from pathlib import Path

MAX_BODY = 8 << 20


@dataclass(frozen=True)
class BasicAuth:
    username: str
    password_file: str

    def header(self) -> str:
        password = Path(self.password_file).read_text().strip()
        token = base64.b64encode(f"{self.username}:{password}".encode()).decode()
        return f"Basic {token}"


def ssl_context(ca_file: str) -> ssl.SSLContext:
    """Verify the server's certificate and host name against ``ca_file`` only."""
    context = ssl.create_default_context(cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def request(
    url: str,
    *,
    ca_file: str = "",
    auth: BasicAuth | None = None,
    method: str = "GET",
    timeout_s: float = 1.0,
) -> tuple[int, str]:
    """(status, body) of one request; HTTPError for a 4xx/5xx answer, OSError when no
    answer comes."""
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
    if url.startswith("https://"):
        handlers.append(urllib.request.HTTPSHandler(context=ssl_context(ca_file)))
    opener = urllib.request.build_opener(*handlers)
    req = urllib.request.Request(url, method=method)
    if auth is not None:
        req.add_header("Authorization", auth.header())
    with opener.open(req, timeout=timeout_s) as response:
        return int(response.status), response.read(MAX_BODY).decode("utf-8", errors="replace")
