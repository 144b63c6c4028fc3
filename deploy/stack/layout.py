"""Where a named stack keeps its state, and the endpoints it publishes.

A stack folder ``.stack/<name>/`` holds ``state.json``, ``endpoints.env`` (what every
command reads), ``conf/``, ``data/``, ``logs/`` and, for a secure stack, ``secrets/``
(mode 0700: certificates, passwords, the Redis ACL file, the web configurations, Kafka's
properties) and ``roles/<role>.env`` (each role's users and password files). The state,
the endpoints and the role files are created 0600 (they name secrets; a plain stack's
endpoints hold its Redis password).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from deploy.secrets.files import private_dir, replace_private
from deploy.secrets.folder import METRICS_USER, WEB_USER, SecretsLayout

SERVICES = ("kafka", "redis", "prometheus", "alertmanager")
# Who a command acts as on a secure stack (demandmon/settings.py's Role).
ROLES = ("worker", "replay", "exporter", "reader", "admin")
# Roles with a Kafka user; the exporter and the reader never talk to Kafka.
KAFKA_ROLES = ("worker", "replay", "admin")
SASL_MECHANISM = "SCRAM-SHA-512"


@dataclass
class StackState:
    name: str
    ports: dict[str, int] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)
    redis_password: str = ""  # the plain stack's only secret (a secure stack: empty)
    kafka_cluster_id: str = ""
    scrape_interval: str = "5s"
    webhook_url: str = ""
    # Empty: the repository's deploy/prometheus/rules. Tests point it elsewhere.
    rules_dir: str = ""
    # A secure stack (docs/security.md): TLS and a user per role everywhere.
    secure: bool = False
    secrets_dir: str = ""  # .stack/<name>/secrets of a secure stack
    key_prefix: str = "dm"  # the Redis key prefix its ACL users are confined to
    # Redis as a cluster of three masters (deploy/stack/redis_cluster.py), plain only.
    redis_cluster: bool = False

    def secrets(self) -> SecretsLayout:
        """Where the secure stack's certificates and secrets are."""
        if not self.secure or not self.secrets_dir:
            raise ValueError(f"stack {self.name} is not secure")
        return SecretsLayout.at(Path(self.secrets_dir), self.key_prefix)

    def endpoints(self) -> dict[str, str]:
        """Environment variables that point every demandmon command at this stack (a
        secure stack: paths to secret files, never a secret)."""
        p = self.ports
        if not self.secure:
            # A cluster: the URL names one node, from which clients learn the others.
            cluster = {"DEMANDMON_REDIS_CLUSTER": "true"} if self.redis_cluster else {}
            return {
                "DEMANDMON_KAFKA_BOOTSTRAP": f"127.0.0.1:{p['kafka']}",
                "DEMANDMON_REDIS_URL": f"redis://:{self.redis_password}@127.0.0.1:{p['redis']}/0",
                **cluster,
                "DEMANDMON_PROMETHEUS_URL": f"http://127.0.0.1:{p['prometheus']}",
                "DEMANDMON_ALERTMANAGER_URL": f"http://127.0.0.1:{p['alertmanager']}",
                "DEMANDMON_WORKER_WEB_PORT": str(p["worker"]),
                "DEMANDMON_EXPORTER_PORT": str(p["exporter"]),
            }
        s = self.secrets()
        return {
            "DEMANDMON_KAFKA_BOOTSTRAP": f"127.0.0.1:{p['kafka']}",
            "DEMANDMON_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "DEMANDMON_KAFKA_SASL_MECHANISM": SASL_MECHANISM,
            "DEMANDMON_KAFKA_CA_FILE": str(s.ca_cert),
            "DEMANDMON_REDIS_URL": f"rediss://127.0.0.1:{p['redis']}/0",
            "DEMANDMON_REDIS_CA_FILE": str(s.ca_cert),
            "DEMANDMON_KEY_PREFIX": self.key_prefix,
            "DEMANDMON_PROMETHEUS_URL": f"https://127.0.0.1:{p['prometheus']}",
            "DEMANDMON_ALERTMANAGER_URL": f"https://127.0.0.1:{p['alertmanager']}",
            "DEMANDMON_PROMETHEUS_USERNAME": WEB_USER,
            "DEMANDMON_PROMETHEUS_PASSWORD_FILE": str(s.web_password),
            "DEMANDMON_PROMETHEUS_CA_FILE": str(s.ca_cert),
            "DEMANDMON_WEB_TLS_CERT_FILE": str(s.cert("web")),
            "DEMANDMON_WEB_TLS_KEY_FILE": str(s.key("web")),
            "DEMANDMON_METRICS_USERNAME": METRICS_USER,
            "DEMANDMON_METRICS_PASSWORD_FILE": str(s.metrics_password),
            "DEMANDMON_ALERTS_TOKEN_FILE": str(s.alerts_token),
            "DEMANDMON_WORKER_WEB_PORT": str(p["worker"]),
            "DEMANDMON_EXPORTER_PORT": str(p["exporter"]),
        }

    def role_env(self, role: str) -> dict[str, str]:
        """The variables that make a command act as ``role`` (its Kafka and Redis users
        and their password files): what ``roles/<role>.env`` holds. Empty on a plain
        stack, which has no users."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r} (roles: {', '.join(ROLES)})")
        if not self.secure:
            return {}
        s = self.secrets()
        env: dict[str, str] = {}
        if role in KAFKA_ROLES:
            env["DEMANDMON_KAFKA_USERNAME"] = role
            env["DEMANDMON_KAFKA_PASSWORD_FILE"] = str(s.kafka_password(role))
        env["DEMANDMON_REDIS_USERNAME"] = role
        env["DEMANDMON_REDIS_PASSWORD_FILE"] = str(s.redis_password(role))
        return env

    def env(self, role: str | None = None) -> dict[str, str]:
        """The endpoints, plus ``role``'s users when given: a command's environment."""
        return {**self.endpoints(), **(self.role_env(role) if role else {})}


def _env_text(variables: dict[str, str]) -> str:
    return "".join(f"{k}={v}\n" for k, v in variables.items())


class StackLayout:
    def __init__(self, root: Path, name: str) -> None:
        self.dir = (root / name).resolve()
        self.name = name

    @property
    def state_file(self) -> Path:
        return self.dir / "state.json"

    @property
    def env_file(self) -> Path:
        return self.dir / "endpoints.env"

    @property
    def secrets_dir(self) -> Path:
        return self.dir / "secrets"

    @property
    def roles_dir(self) -> Path:
        return self.dir / "roles"

    def role_file(self, role: str) -> Path:
        return self.roles_dir / f"{role}.env"

    def log(self, service: str) -> Path:
        path = self.dir / "logs" / f"{service}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def data(self, service: str) -> Path:
        path = self.dir / "data" / service
        path.mkdir(parents=True, exist_ok=True)
        return path

    def conf(self, filename: str) -> Path:
        path = self.dir / "conf" / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def load(self) -> StackState | None:
        if not self.state_file.exists():
            return None
        return StackState(**json.loads(self.state_file.read_text()))

    def save(self, state: StackState) -> None:
        """Write state.json, endpoints.env and (secure) roles/<role>.env, each created
        0600 and replaced atomically."""
        self.dir.mkdir(parents=True, exist_ok=True)
        replace_private(self.state_file, json.dumps(asdict(state), indent=2, sort_keys=True) + "\n")
        replace_private(self.env_file, _env_text(state.endpoints()))
        if state.secure:
            private_dir(self.roles_dir)
            for role in ROLES:
                replace_private(self.role_file(role), _env_text(state.role_env(role)))


def marker(service: str, layout: StackLayout, state: StackState) -> tuple[str, ...]:
    """Strings in the process's command line that prove it is this stack's service."""
    if service.startswith("redis"):
        # redis-server rewrites its process title to "redis-server 127.0.0.1:PORT" (and
        # " [cluster]" after it for a cluster node: "redis", "redis_2", "redis_3").
        return (str(layout.dir), f"redis-server 127.0.0.1:{state.ports[service]}")
    return (str(layout.dir),)
