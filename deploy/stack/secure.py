"""The secure shape of the local stack (docs/security.md), service by service.

- Kafka (single KRaft node, broker and controller in one process): clients and the
  inter-broker listener on ``SASL_SSL`` with SCRAM-SHA-512 (users admin, worker, replay
  created at format time); the controller listener on ``SSL`` with client certificates
  required, whose certificate principal ``CN=kafka-controller,O=demandmon`` is mapped to
  ``kafka-controller``; PEM key stores; ``StandardAuthorizer`` with
  ``allow.everyone.if.no.acl.found=false``; super users ``admin`` and ``kafka-controller``.
- Redis: TLS only (``port 0``, ``tls-port``), no client certificates (users authenticate
  with ACL passwords), the ACL file from deploy/secrets, the default user off.
- Prometheus and Alertmanager: ``--web.config.file`` (TLS + bcrypt basic auth for user
  ``demandmon``); no lifecycle API (Prometheus reloads on SIGHUP); every scrape and the
  alert path over https with the CA and basic auth; Alertmanager's webhooks carry the
  alerts token from its file and verify the exporter's certificate against the CA.

The stack's own probes act as ``admin`` (Kafka, Redis) and ``demandmon`` (Prometheus,
Alertmanager).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
import yaml

from deploy.secrets.folder import KAFKA_USERS, METRICS_USER, WEB_USER, SecretsLayout
from deploy.secrets.pki import subject_dn
from deploy.stack.install import storage_format_args
from deploy.stack.layout import SASL_MECHANISM, StackState
from deploy.stack.web import BasicAuth, request, ssl_context

KAFKA_LISTENER = "SASL_SSL"
CONTROLLER_LISTENER = "CONTROLLER"
CONTROLLER_PRINCIPAL = "kafka-controller"
ADMIN = "admin"
AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"


# Kafka ---------------------------------------------------------------------------------
def kafka_properties(state: StackState) -> list[str]:
    """The security lines of a secure node's server.properties (they hold the admin's
    password for the inter-broker login: the file lives in secrets/, mode 0600)."""
    s = state.secrets()
    port, ctrl = state.ports["kafka"], state.ports["kafka_controller"]
    admin_password = s.read(s.kafka_password(ADMIN))
    sasl = KAFKA_LISTENER.lower()
    controller = CONTROLLER_LISTENER.lower()
    # The controller's certificate DN -> principal "kafka-controller" (a super user); any
    # other certificate keeps its full DN and has no rights.
    dn = subject_dn(CONTROLLER_PRINCIPAL).replace(CONTROLLER_PRINCIPAL, "([a-z-]+)")
    return [
        f"listeners={KAFKA_LISTENER}://127.0.0.1:{port},{CONTROLLER_LISTENER}://127.0.0.1:{ctrl}",
        f"advertised.listeners={KAFKA_LISTENER}://127.0.0.1:{port},"
        f"{CONTROLLER_LISTENER}://127.0.0.1:{ctrl}",
        f"inter.broker.listener.name={KAFKA_LISTENER}",
        f"controller.listener.names={CONTROLLER_LISTENER}",
        f"listener.security.protocol.map={CONTROLLER_LISTENER}:SSL,{KAFKA_LISTENER}:SASL_SSL",
        # Clients and inter-broker: TLS with the kafka certificate, SCRAM-SHA-512.
        f"sasl.enabled.mechanisms={SASL_MECHANISM}",
        f"sasl.mechanism.inter.broker.protocol={SASL_MECHANISM}",
        f"listener.name.{sasl}.{SASL_MECHANISM.lower()}.sasl.jaas.config="
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{ADMIN}" password="{admin_password}";',
        f"listener.name.{sasl}.ssl.keystore.type=PEM",
        f"listener.name.{sasl}.ssl.keystore.location={s.keystore('kafka')}",
        f"listener.name.{sasl}.ssl.truststore.type=PEM",
        f"listener.name.{sasl}.ssl.truststore.location={s.ca_cert}",
        # Controller: mutual TLS with the kafka-controller certificate (the node presents
        # it when it connects to its own controller listener).
        f"listener.name.{controller}.ssl.keystore.type=PEM",
        f"listener.name.{controller}.ssl.keystore.location={s.keystore('kafka-controller')}",
        f"listener.name.{controller}.ssl.truststore.type=PEM",
        f"listener.name.{controller}.ssl.truststore.location={s.ca_cert}",
        f"listener.name.{controller}.ssl.client.auth=required",
        f"listener.name.{controller}.ssl.principal.mapping.rules=RULE:^{dn}$/$1/,DEFAULT",
        "ssl.endpoint.identification.algorithm=https",
        # Authorization: nothing without an ACL, except for the super users.
        f"authorizer.class.name={AUTHORIZER}",
        "allow.everyone.if.no.acl.found=false",
        f"super.users=User:{ADMIN};User:{CONTROLLER_PRINCIPAL}",
    ]


def _argfile_token(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def kafka_format_argfile(state: StackState, props: Path) -> str:
    """A java ``@argfile`` running the storage tool's format with the SCRAM users, so that
    their passwords never appear on a command line (``ps``)."""
    s = state.secrets()
    argv = storage_format_args(state.kafka_cluster_id, props)
    for user in KAFKA_USERS:
        password = s.read(s.kafka_password(user))
        argv += ["--add-scram", f"{SASL_MECHANISM}=[name={user},password={password}]"]
    return "\n".join(_argfile_token(a) for a in argv) + "\n"


def kafka_client_options(state: StackState, user: str = ADMIN) -> dict[str, Any]:
    """kafka-python options for ``user`` on this stack (the probes act as admin)."""
    s = state.secrets()
    return {
        "security_protocol": "SASL_SSL",
        "ssl_context": ssl_context(str(s.ca_cert)),
        "sasl_mechanism": SASL_MECHANISM,
        "sasl_plain_username": user,
        "sasl_plain_password": s.read(s.kafka_password(user)),
    }


# Redis ---------------------------------------------------------------------------------
def redis_tls_lines(state: StackState) -> list[str]:
    s = state.secrets()
    return [
        "port 0",
        f"tls-port {state.ports['redis']}",
        f"tls-cert-file {s.cert('redis')}",
        f"tls-key-file {s.key('redis')}",
        f"tls-ca-cert-file {s.ca_cert}",
        # Users authenticate with their ACL password over TLS, not with certificates.
        "tls-auth-clients no",
        'tls-protocols "TLSv1.2 TLSv1.3"',
        f"aclfile {s.redis_acl}",
    ]


def redis_client(state: StackState, user: str = ADMIN, timeout_s: float = 1.0) -> redis.Redis:
    s = state.secrets()
    return redis.Redis(
        host="127.0.0.1",
        port=state.ports["redis"],
        username=user,
        password=s.read(s.redis_password(user)),
        ssl=True,
        ssl_ca_certs=str(s.ca_cert),
        ssl_cert_reqs=ssl.CERT_REQUIRED,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
    )


# Prometheus and Alertmanager ------------------------------------------------------------
def web_auth(state: StackState) -> BasicAuth:
    """How the stack (and tests) log in to Prometheus and Alertmanager."""
    return BasicAuth(WEB_USER, str(state.secrets().web_password))


def metrics_auth(state: StackState) -> BasicAuth:
    """How Prometheus (and `stack status`) log in to the worker's and exporter's /metrics."""
    return BasicAuth(METRICS_USER, str(state.secrets().metrics_password))


def _https(s: SecretsLayout, username: str, password_file: Path) -> dict[str, Any]:
    return {
        "scheme": "https",
        "tls_config": {"ca_file": str(s.ca_cert)},
        "basic_auth": {"username": username, "password_file": str(password_file)},
    }


def prometheus_config(state: StackState, rules: str) -> str:
    s = state.secrets()
    p = state.ports

    # A fresh mapping per use: YAML would otherwise print anchors and aliases.
    def metrics() -> dict[str, Any]:
        return _https(s, METRICS_USER, s.metrics_password)

    def web() -> dict[str, Any]:
        return _https(s, WEB_USER, s.web_password)

    def job(name: str, port: int, auth: dict[str, Any]) -> dict[str, Any]:
        return {"job_name": name, **auth, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}

    doc = {
        "global": {
            "scrape_interval": state.scrape_interval,
            "evaluation_interval": state.scrape_interval,
        },
        "rule_files": [f"{rules}/*.yml"],
        "alerting": {
            "alertmanagers": [
                {**web(), "static_configs": [{"targets": [f"127.0.0.1:{p['alertmanager']}"]}]}
            ]
        },
        "scrape_configs": [
            job("demandmon-exporter", p["exporter"], metrics()),
            job("demandmon-worker", p["worker"], metrics()),
            job("prometheus", p["prometheus"], web()),
        ],
    }
    return yaml.safe_dump(doc, sort_keys=False)


def alertmanager_config(state: StackState, rendered: str) -> str:
    """The rendered Alertmanager configuration with every webhook reaching the exporter
    over https: the alerts token from its file as a bearer credential, the CA."""
    s = state.secrets()
    doc = yaml.safe_load(rendered)
    for receiver in doc.get("receivers") or []:
        for hook in receiver.get("webhook_configs") or []:
            hook["http_config"] = {
                "authorization": {"type": "Bearer", "credentials_file": str(s.alerts_token)},
                "tls_config": {"ca_file": str(s.ca_cert)},
            }
    text: str = yaml.safe_dump(doc, sort_keys=False)
    return text


def web_ready(state: StackState, service: str) -> Callable[[], bool]:
    url = f"https://127.0.0.1:{state.ports[service]}/-/ready"
    ca, auth = str(state.secrets().ca_cert), web_auth(state)

    def ready() -> bool:
        status, _ = request(url, ca_file=ca, auth=auth)
        return status == 200

    return ready
