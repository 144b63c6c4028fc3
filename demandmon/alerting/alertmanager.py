"""Alertmanager configuration: routes by severity, one webhook, e-mail, inhibitions.

The committed deploy/alertmanager/alertmanager.yml.tmpl holds the literal placeholder
`__WEBHOOK_URL__` (the webhook URL is deployment-specific and may carry a token, so it
never lives in the repository); `render_alertmanager` fills it in, and with
`http_config` (docker-compose's receiver: a bearer token and a CA from files) says how
Alertmanager authenticates to it.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from demandmon.alerting import names as n
from demandmon.alerting.email import EmailRouting, email_tree
from demandmon.alerting.rules import HEADER, dump_yaml

TEMPLATE_FILE = "deploy/alertmanager/alertmanager.yml.tmpl"
PLACEHOLDER = "__WEBHOOK_URL__"

GROUP_BY = ["alertname", "source", "bcu"]
# Per-BCU alerts are the ones carrying a bcu label; matching on its presence keeps the
# inhibit rules right when an alert is added.
PER_BCU = 'bcu=~".+"'

# How Alertmanager in docker-compose.yml reaches the exporter's /alerts over https: the
# bearer token and the CA from the files compose mounts (docs/security.md).
COMPOSE_WEBHOOK_URL = "https://exporter:9464/alerts"
COMPOSE_HTTP_CONFIG: Mapping[str, Any] = {
    "authorization": {"type": "Bearer", "credentials_file": "/run/secrets/alerts.token"},
    "tls_config": {"ca_file": "/run/secrets/ca.pem"},
}


def _receiver(name: str, url: str, http_config: Mapping[str, Any] | None) -> dict[str, Any]:
    hook: dict[str, Any] = {"url": url, "send_resolved": True}
    if http_config is not None:
        hook["http_config"] = copy.deepcopy(dict(http_config))
    return {"name": name, "webhook_configs": [hook]}


# Per severity: the timing of its routes. Pages go out quickly and repeat hourly until
# someone acts; warnings use the root route's timing.
TIMING: dict[str, dict[str, str]] = {
    "critical": {"group_wait": "10s", "repeat_interval": "1h"},
    "warning": {},
}


def alertmanager_config(
    webhook_url: str,
    http_config: Mapping[str, Any] | None = None,
    email: EmailRouting | None = None,
) -> dict[str, Any]:
    """Webhook routes per severity; with ``email``, e-mail routes after them (the webhook
    routes `continue`, so every alert reaches both the webhook and the e-mail)."""
    webhook_routes: list[dict[str, Any]] = [
        {"matchers": [f'severity="{sev}"'], "receiver": f"demandmon-{sev}", **times}
        for sev, times in TIMING.items()
    ]
    tree = email_tree(email, TIMING) if email is not None else None
    if tree is not None:
        for route in webhook_routes:
            route["continue"] = True
    route = {
        "receiver": "demandmon-warning",
        "group_by": GROUP_BY,
        "group_wait": "30s",
        "group_interval": "5m",
        "repeat_interval": "4h",
        "routes": webhook_routes + (tree["routes"] if tree else []),
    }
    inhibit_rules = [
        {
            # A silent feed empties the windows: per-BCU figures for that source are
            # not news until it recovers.
            "source_matchers": [f'alertname="{n.ALERT_FEED_STALE}"'],
            "target_matchers": [PER_BCU],
            "equal": ["source"],
        },
        {
            # With the worker down nothing is applied, for any source.
            "source_matchers": [f'alertname="{n.ALERT_WORKER_DOWN}"'],
            "target_matchers": [PER_BCU],
        },
        {
            # A stopped worker also makes the feed look silent; report the cause only.
            "source_matchers": [f'alertname="{n.ALERT_WORKER_DOWN}"'],
            "target_matchers": [f'alertname="{n.ALERT_FEED_STALE}"'],
        },
        # Deliberately no rule for ALERT_PARTITION_STALLED: a stalled partition freezes
        # only the incidents keyed to it (in every BCU), so per-BCU alerts for the rest,
        # an I-grade waiting past target among them, must still arrive; and per-BCU alerts
        # carry no partition label to scope an inhibition to the affected incidents.
    ]
    return {
        "global": {"resolve_timeout": "5m", **(tree["global"] if tree else {})},
        "route": route,
        "receivers": [
            _receiver("demandmon-critical", webhook_url, http_config),
            _receiver("demandmon-warning", webhook_url, http_config),
            *(tree["receivers"] if tree else []),
        ],
        "inhibit_rules": inhibit_rules,
    }


def alertmanager_template() -> str:
    return HEADER + dump_yaml(alertmanager_config(PLACEHOLDER))


def render_alertmanager(
    webhook_url: str,
    http_config: Mapping[str, Any] | None = None,
    email: EmailRouting | None = None,
) -> str:
    """The deployable config; the URL goes through the YAML dumper, so it is quoted safely.
    ``http_config`` (Alertmanager's, e.g. COMPOSE_HTTP_CONFIG) goes on every webhook;
    ``email`` (from the settings: demandmon.alerting.email.email_routing) adds e-mail."""
    if not re.match(r"^https?://\S+$", webhook_url):
        raise ValueError("webhook URL must be an http(s) URL without spaces")
    return dump_yaml(alertmanager_config(webhook_url, http_config, email))
