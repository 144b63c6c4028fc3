"""Where a named stack keeps its state, and the endpoints it publishes."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

SERVICES = ("kafka", "redis", "prometheus", "alertmanager")


@dataclass
class StackState:
    name: str
    ports: dict[str, int] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)
    redis_password: str = ""
    kafka_cluster_id: str = ""
    scrape_interval: str = "5s"
    webhook_url: str = ""
    # Empty: the repository's deploy/prometheus/rules. Tests point it elsewhere.
    rules_dir: str = ""

    def endpoints(self) -> dict[str, str]:
        """Environment variables that point every demandmon command at this stack."""
        p = self.ports
        return {
            "DEMANDMON_KAFKA_BOOTSTRAP": f"127.0.0.1:{p['kafka']}",
            "DEMANDMON_REDIS_URL": f"redis://:{self.redis_password}@127.0.0.1:{p['redis']}/0",
            "DEMANDMON_PROMETHEUS_URL": f"http://127.0.0.1:{p['prometheus']}",
            "DEMANDMON_ALERTMANAGER_URL": f"http://127.0.0.1:{p['alertmanager']}",
            "DEMANDMON_WORKER_WEB_PORT": str(p["worker"]),
            "DEMANDMON_EXPORTER_PORT": str(p["exporter"]),
        }


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
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(asdict(state), indent=2, sort_keys=True) + "\n")
        lines = [f"{k}={v}" for k, v in state.endpoints().items()]
        self.env_file.write_text("\n".join(lines) + "\n")
        self.env_file.chmod(0o600)
