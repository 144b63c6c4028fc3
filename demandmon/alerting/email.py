"""Alert e-mail: Alertmanager's email receivers, routed by severity and by BCU.

The SMTP relay, the sender and the recipients come from the settings (DEMANDMON_SMTP_*,
DEMANDMON_ALERT_EMAIL_*; docs/alerts.md). Everyone in `to` gets every alert of a severity;
a BCU's own recipients get that BCU's alerts as well. Each message is one alert group
(alertname, source, bcu), so the subject names the alert, the BCU and the source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from demandmon.settings import Settings
from schemas.vocabulary import BCU_CODES

SUBJECT = (
    "[demandmon {{ .Status | toUpper }}] {{ .CommonLabels.severity }}: "
    "{{ .CommonLabels.alertname }}"
    "{{ with .CommonLabels.bcu }} in {{ . }}{{ end }}"
    "{{ with .CommonLabels.source }} ({{ . }}){{ end }}"
)
# One paragraph per alert of the group: what, where, the runbook. No free text from
# incidents ever reaches an alert's labels or annotations.
TEXT = (
    "{{ range .Alerts }}{{ .Status | toUpper }}: {{ .Annotations.summary }}\n"
    "{{ .Annotations.description }}\n"
    "Runbook: {{ .Annotations.runbook_url }}\n"
    "Since: {{ .StartsAt }}\n"
    "Labels:{{ range .Labels.SortedPairs }} {{ .Name }}={{ .Value }}{{ end }}\n\n{{ end }}"
)


@dataclass(frozen=True)
class EmailRouting:
    smarthost: str  # host:port of the SMTP relay
    sender: str
    to: tuple[str, ...]
    by_bcu: dict[str, tuple[str, ...]] = field(default_factory=dict)
    require_tls: bool = True

    def __post_init__(self) -> None:
        if not self.to and not self.by_bcu:
            raise ValueError("alert e-mail needs at least one recipient")
        if not self.sender:
            raise ValueError("alert e-mail needs a sender (DEMANDMON_SMTP_FROM)")
        unknown = sorted(set(self.by_bcu) - set(BCU_CODES))
        if unknown:
            raise ValueError(f"unknown BCU in alert e-mail recipients: {' '.join(unknown)}")


def email_routing(settings: Settings) -> EmailRouting | None:
    """The settings' e-mail routing, or None when no SMTP host is set."""
    if not settings.smtp_host:
        return None
    by_bcu: dict[str, list[str]] = {}
    for pair in filter(None, settings.alert_email_bcu_to.split(",")):
        bcu, _, address = pair.partition("=")
        by_bcu.setdefault(bcu, []).append(address)
    return EmailRouting(
        smarthost=f"{settings.smtp_host}:{settings.smtp_port}",
        sender=settings.smtp_from,
        to=tuple(filter(None, settings.alert_email_to.split(","))),
        by_bcu={bcu: tuple(addresses) for bcu, addresses in by_bcu.items()},
        require_tls=settings.smtp_require_tls,
    )


def receiver(name: str, to: tuple[str, ...]) -> dict[str, Any]:
    config = {
        "to": ", ".join(to),
        "send_resolved": True,
        "headers": {"Subject": SUBJECT},
        "text": TEXT,
    }
    return {"name": name, "email_configs": [config]}


def email_tree(email: EmailRouting, timing: dict[str, dict[str, str]]) -> dict[str, Any]:
    """Routes (one per severity, a sub-route per BCU with its own recipients), receivers
    and the global SMTP settings. ``timing`` is severity -> the route's timing keys."""
    routes: list[dict[str, Any]] = []
    receivers: list[dict[str, Any]] = []
    for severity, times in timing.items():
        name = f"email-{severity}"
        route: dict[str, Any] = {"matchers": [f'severity="{severity}"'], "receiver": name}
        route.update(times)
        if email.to:
            receivers.append(receiver(name, email.to))
        else:  # only per-BCU recipients: the rest of this severity goes nowhere by e-mail
            receivers.append({"name": name})
        sub = []
        for bcu in BCU_CODES:
            if bcu in email.by_bcu:
                bcu_name = f"{name}-{bcu}"
                sub.append({"matchers": [f'bcu="{bcu}"'], "receiver": bcu_name})
                receivers.append(receiver(bcu_name, (*email.to, *email.by_bcu[bcu])))
        if sub:
            route["routes"] = sub
        routes.append(route)
    smtp = {
        "smtp_smarthost": email.smarthost,
        "smtp_from": email.sender,
        "smtp_require_tls": email.require_tls,
    }
    return {"routes": routes, "receivers": receivers, "global": smtp}
