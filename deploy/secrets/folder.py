"""Generate every certificate, password and authentication file a secure deployment needs
into one folder (``.stack/<name>/secrets`` for the local stack, any folder for compose).

The folder is created with mode 0700; every secret file in it with mode 0600 (exclusive
create, never widened); certificates and the CA certificate are public (0644). Running it
again keeps every key, certificate, password and token that exists and makes only the
missing ones, so they stay stable across ``stack up``. The files derived from them (the
Redis ACL file, the web configurations, Kafka's key stores) are made from what is on disk
and remade (0600, replaced atomically) only when they no longer match it, e.g. after a
password file was removed to rotate it. To rotate everything, remove the folder.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import bcrypt
import yaml
from cryptography import x509

from deploy.secrets import pki
from deploy.secrets.files import (
    SecretsError,
    check_private_file,
    create_private,
    create_public,
    private_dir,
    read_secret,
    replace_private,
)
from deploy.secrets.redis_acl import KEY_PREFIX, acl_file

# Certificates: service -> its compose service names (besides 127.0.0.1 and localhost).
SERVICE_NAMES: dict[str, tuple[str, ...]] = {
    "kafka": ("kafka",),
    "kafka-controller": ("kafka",),
    "redis": ("redis",),
    "prometheus": ("prometheus",),
    "alertmanager": ("alertmanager",),
    "web": ("worker", "exporter"),  # the worker's and the exporter's HTTPS
}
# Certificates that also authenticate as TLS clients (Kafka's controller listener wants
# client certificates; the broker presents its own when it connects to the controller).
CLIENT_CERTIFICATES = ("kafka", "kafka-controller")
# Kafka reads its key and certificate chain from one PEM "key store" file.
KEYSTORES = ("kafka", "kafka-controller")

KAFKA_USERS = ("admin", "worker", "replay")
REDIS_USERS = ("admin", "worker", "replay", "exporter", "reader")
WEB_USER = "demandmon"  # basic auth on Prometheus and Alertmanager
METRICS_USER = "prometheus"  # basic auth on the worker's and exporter's /metrics
BCRYPT_ROUNDS = 12


@dataclass(frozen=True)
class SecretsLayout:
    """Where each file of a secrets folder is. ``SecretsLayout.at(folder)`` names them
    without creating anything; ``generate`` creates them."""

    folder: Path
    key_prefix: str = "dm"
    services: tuple[str, ...] = tuple(SERVICE_NAMES)
    ca_cert: Path = field(init=False)
    ca_key: Path = field(init=False)
    metrics_password: Path = field(init=False)
    alerts_token: Path = field(init=False)
    web_password: Path = field(init=False)
    redis_acl: Path = field(init=False)
    prometheus_web_config: Path = field(init=False)
    alertmanager_web_config: Path = field(init=False)

    def __post_init__(self) -> None:
        f = self.folder
        set_ = object.__setattr__
        set_(self, "ca_cert", f / "ca.pem")
        set_(self, "ca_key", f / "ca.key")
        set_(self, "metrics_password", f / "metrics.password")
        set_(self, "alerts_token", f / "alerts.token")
        set_(self, "web_password", f / "web.password")
        set_(self, "redis_acl", f / "redis-users.acl")
        set_(self, "prometheus_web_config", f / "prometheus-web.yml")
        set_(self, "alertmanager_web_config", f / "alertmanager-web.yml")

    @classmethod
    def at(cls, folder: Path, key_prefix: str = "dm") -> SecretsLayout:
        return cls(folder.resolve(), key_prefix)

    # Per service and per user ------------------------------------------------------
    def cert(self, service: str) -> Path:
        return self.folder / f"{service}.pem"

    def key(self, service: str) -> Path:
        return self.folder / f"{service}.key"

    def keystore(self, service: str) -> Path:
        """Key, certificate and CA in one PEM file (Kafka's ``ssl.keystore.type=PEM``)."""
        return self.folder / f"{service}-keystore.pem"

    def kafka_password(self, user: str) -> Path:
        return self.folder / f"kafka-{user}.password"

    def redis_password(self, user: str) -> Path:
        return self.folder / f"redis-{user}.password"

    # Listings ----------------------------------------------------------------------
    def public_files(self) -> list[Path]:
        return [self.ca_cert, *(self.cert(s) for s in self.services)]

    def secret_files(self) -> list[Path]:
        return [
            self.ca_key,
            *(self.key(s) for s in self.services),
            *(self.keystore(s) for s in KEYSTORES if s in self.services),
            *(self.kafka_password(u) for u in KAFKA_USERS),
            *(self.redis_password(u) for u in REDIS_USERS),
            self.metrics_password,
            self.alerts_token,
            self.web_password,
            self.redis_acl,
            self.prometheus_web_config,
            self.alertmanager_web_config,
        ]

    def read(self, path: Path) -> str:
        """A secret's text (a password or token), refused when others may read it."""
        return read_secret(path)


def new_password() -> str:
    """192 random bits as hex: safe unquoted in every format it goes into (JAAS, the
    Kafka storage tool's --add-scram, Redis ACLs, YAML, URLs)."""
    return secrets.token_hex(24)


def _password(path: Path) -> str:
    create_private(path, new_password() + "\n")
    return read_secret(path)


def _bcrypt(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(BCRYPT_ROUNDS)).decode()


def _derived(path: Path, text: str) -> None:
    """A file made from others: written when missing or different, else kept."""
    if path.exists():
        check_private_file(path)
        if path.read_text() == text:
            return
    replace_private(path, text)


def _web_config_matches(path: Path, service: str, password: str) -> bool:
    try:
        doc = yaml.safe_load(read_secret(path))
        hashed = str(doc["basic_auth_users"][WEB_USER]).encode()
        tls = doc["tls_server_config"]
        same_files = (tls["cert_file"], tls["key_file"]) == (f"{service}.pem", f"{service}.key")
        return same_files and bcrypt.checkpw(password.encode(), hashed)
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError):
        return False


def web_config(service: str, password: str) -> str:
    """The ``--web.config.file`` of Prometheus or Alertmanager: TLS with the service's
    certificate and bcrypt basic auth for ``demandmon``. File names are relative, which
    both resolve against the folder of the web config (so the folder may be mounted
    anywhere in a container)."""
    doc = {
        "tls_server_config": {
            "cert_file": f"{service}.pem",
            "key_file": f"{service}.key",
            "min_version": "TLS12",
        },
        "basic_auth_users": {WEB_USER: _bcrypt(password)},
    }
    return "# Generated by deploy/secrets.\n" + yaml.safe_dump(doc, sort_keys=True)


def _ca(layout: SecretsLayout) -> tuple[x509.Certificate, pki.PrivateKey]:
    if layout.ca_key.exists():
        key = pki.load_key(read_secret(layout.ca_key).encode())
    elif layout.ca_cert.exists():
        raise SecretsError(
            f"{layout.ca_cert}: exists without its key {layout.ca_key.name}; "
            f"remove the folder {layout.folder} to start afresh"
        )
    else:
        key = pki.new_key()
        create_private(layout.ca_key, pki.key_pem(key))
    create_public(layout.ca_cert, pki.cert_pem(pki.make_ca(key)))
    cert = x509.load_pem_x509_certificate(layout.ca_cert.read_bytes())
    if cert.public_key() != key.public_key():
        raise SecretsError(f"{layout.ca_cert}: does not match {layout.ca_key.name}")
    return cert, key


def _service(
    layout: SecretsLayout,
    service: str,
    dns_names: Sequence[str],
    ca: tuple[x509.Certificate, pki.PrivateKey],
) -> None:
    key_path, cert_path = layout.key(service), layout.cert(service)
    if key_path.exists():
        key = pki.load_key(read_secret(key_path).encode())
    elif cert_path.exists():
        raise SecretsError(
            f"{cert_path}: exists without its key {key_path.name}; remove both to remake them"
        )
    else:
        key = pki.new_key()
        create_private(key_path, pki.key_pem(key))
    if not cert_path.exists():
        cert = pki.make_leaf(
            service, dns_names, key, *ca, client_auth=service in CLIENT_CERTIFICATES
        )
        create_public(cert_path, pki.cert_pem(cert))
    if service in KEYSTORES:
        bundle = read_secret(key_path) + "\n" + cert_path.read_text() + layout.ca_cert.read_text()
        _derived(layout.keystore(service), bundle)


def generate(
    folder: Path,
    key_prefix: str = "dm",
    service_names: Mapping[str, Sequence[str]] | None = None,
) -> SecretsLayout:
    """Make (or complete) the secrets folder ``folder`` and return where each file is.

    ``key_prefix`` is the Redis key prefix the ACL users are confined to; a folder made
    earlier gets its ACL file remade when the prefix or a password changed.
    ``service_names`` maps each certificate (kafka, kafka-controller, redis, prometheus,
    alertmanager, web) to the host names it is valid for besides 127.0.0.1 and localhost
    (default: the docker-compose service names).
    """
    if not KEY_PREFIX.fullmatch(key_prefix):
        raise SecretsError("key prefix must be 1-32 characters of a-z 0-9 _")
    names = {**SERVICE_NAMES, **(service_names or {})}
    unknown = sorted(set(names) - set(SERVICE_NAMES))
    if unknown:
        raise SecretsError(
            f"unknown certificate {', '.join(unknown)} (known: {', '.join(SERVICE_NAMES)})"
        )
    layout = SecretsLayout(private_dir(folder.resolve()), key_prefix)
    ca = _ca(layout)
    for service in SERVICE_NAMES:
        _service(layout, service, names[service], ca)
    for user in KAFKA_USERS:
        _password(layout.kafka_password(user))
    redis_passwords = {user: _password(layout.redis_password(user)) for user in REDIS_USERS}
    _password(layout.metrics_password)
    _password(layout.alerts_token)
    web = _password(layout.web_password)
    _derived(layout.redis_acl, acl_file(redis_passwords, key_prefix))
    for service, path in (
        ("prometheus", layout.prometheus_web_config),
        ("alertmanager", layout.alertmanager_web_config),
    ):
        # bcrypt hashes are salted: keep a file whose hash still verifies the password.
        if path.exists() and _web_config_matches(path, service, web):
            continue
        if path.exists():
            check_private_file(path)
        replace_private(path, web_config(service, web))
    return layout
