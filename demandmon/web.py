"""The worker's and exporter's web servers (HTTPS, basic auth on /metrics) and the HTTP
client the demo and tests use to read them and Prometheus: all from the settings object,
with its CA and credentials; never through a proxy from the environment."""

from __future__ import annotations

import base64
import binascii
import hmac
import ssl
import urllib.request

from demandmon.clients import ClientSetupError, client_ssl_context
from demandmon.settings import Settings

# -- the worker's and exporter's web servers ---------------------------------------------


def web_tls(settings: Settings) -> bool:
    """Whether the worker and exporter serve HTTPS (both certificate and key are set)."""
    return bool(settings.web_tls_cert_file and settings.web_tls_key_file)


def server_ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The HTTPS context of the worker's and exporter's web servers (TLS 1.2 or later),
    or None for plain HTTP."""
    if not web_tls(settings):
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(settings.web_tls_cert_file, settings.web_tls_key_file)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or "unreadable"
        raise ClientSetupError(
            f"cannot load the web certificate {settings.web_tls_cert_file} ({reason})"
        ) from None
    return context


def basic_auth_ok(header: str | None, username: str, password: str) -> bool:
    """Whether an Authorization header carries these credentials (constant time)."""
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        given = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    expected = f"{username}:{password}".encode()
    return hmac.compare_digest(given, expected)


def metrics_auth_ok(settings: Settings, header: str | None) -> bool:
    """/metrics is open when no metrics user is set, else needs its basic auth."""
    if not settings.metrics_username:
        return True
    password = settings.metrics_password.get_secret_value()
    return basic_auth_ok(header, settings.metrics_username, password)


# -- reading them back (demo, tests) ------------------------------------------------------


def http_get(
    url: str, *, ca_file: str = "", username: str = "", password: str = "", timeout_s: float = 10
) -> bytes:
    """GET a URL, trusting ``ca_file`` for HTTPS and sending basic auth when a username is
    given; never through a proxy from the environment. Raises OSError (urllib's errors)."""
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
    if url.startswith("https://"):
        handlers.append(urllib.request.HTTPSHandler(context=client_ssl_context(ca_file)))
    request = urllib.request.Request(url)
    if username:
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    with urllib.request.build_opener(*handlers).open(request, timeout=timeout_s) as response:
        body: bytes = response.read()
    return body


def web_scheme(settings: Settings) -> str:
    return "https" if web_tls(settings) else "http"


def metrics_get(settings: Settings, url: str, timeout_s: float = 10) -> bytes:
    """GET the worker's or exporter's /metrics (or /healthz) with the settings' metrics
    credentials and the stack's CA (``DEMANDMON_PROMETHEUS_CA_FILE`` signs them all)."""
    return http_get(
        url,
        ca_file=settings.prometheus_ca_file,
        username=settings.metrics_username,
        password=settings.metrics_password.get_secret_value(),
        timeout_s=timeout_s,
    )


def prometheus_get(settings: Settings, url: str, timeout_s: float = 10) -> bytes:
    """GET from Prometheus or Alertmanager with the settings' credentials and CA."""
    return http_get(
        url,
        ca_file=settings.prometheus_ca_file,
        username=settings.prometheus_username,
        password=settings.prometheus_password.get_secret_value(),
        timeout_s=timeout_s,
    )
