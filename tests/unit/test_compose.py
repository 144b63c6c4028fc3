"""docker-compose.yml and the Dockerfile give a deployment whose alerts work from the start:
Prometheus can scrape the worker and the exporter, Kafka and the worker keep their data in
volumes, the image runs as a dedicated user, and Prometheus' lifecycle API is off.

No Docker engine is needed: `docker-compose config` renders and validates the file (with
the required variables set to dummy values, as scripts/test.sh does)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_CONFIG = REPO / "deploy/prometheus/prometheus.compose.yml"
DUMMY_ENV = {"REDIS_PASSWORD": "check", "GRAFANA_ADMIN_PASSWORD": "check"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """docker-compose.yml as Compose renders it (anchors, merges and variables resolved)."""
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (Debian package docker-compose)")
    result = subprocess.run(
        [binary, "-f", "docker-compose.yml", "config"],
        cwd=REPO,
        env={**os.environ, **DUMMY_ENV},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rendered: dict[str, Any] = yaml.safe_load(result.stdout)
    return rendered


def _service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    service: dict[str, Any] = compose["services"][name]
    return service


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the KEY=VALUE form
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _volume_targets(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> source (volume name or host path), short or long syntax."""
    targets = {}
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = str(volume.get("source", "")), str(volume["target"])
        targets[target] = source
    return targets


def _scrape_targets() -> set[str]:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    return {
        target
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }


def test_worker_web_server_listens_where_prometheus_scrapes(compose: dict[str, Any]) -> None:
    env = _environment(_service(compose, "worker"))
    assert env.get("DEMANDMON_WORKER_WEB_BIND") == "0.0.0.0", (
        "bound to 127.0.0.1 the worker cannot be scraped, and DemandmonWorkerDown inhibits "
        "every per-BCU alert"
    )
    assert f"worker:{env['DEMANDMON_WORKER_WEB_PORT']}" in _scrape_targets()


def test_exporter_listens_where_prometheus_scrapes(compose: dict[str, Any]) -> None:
    exporter = _service(compose, "exporter")
    command = exporter["command"]
    assert command[command.index("--host") + 1] == "0.0.0.0"
    port = _environment(exporter)["DEMANDMON_EXPORTER_PORT"]
    assert f"exporter:{port}" in _scrape_targets()


def test_scrape_targets_are_compose_services(compose: dict[str, Any]) -> None:
    for target in _scrape_targets():
        host = target.rsplit(":", 1)[0]
        assert host == "localhost" or host in compose["services"], target


def test_kafka_writes_to_its_volume(compose: dict[str, Any]) -> None:
    kafka = _service(compose, "kafka")
    log_dirs = _environment(kafka).get("KAFKA_LOG_DIRS")
    assert log_dirs is not None, "without KAFKA_LOG_DIRS the image writes to /tmp"
    mounts = _volume_targets(kafka)
    assert log_dirs in mounts, f"KAFKA_LOG_DIRS={log_dirs} is not a mounted volume: {mounts}"
    assert mounts[log_dirs] in compose["volumes"], "a named volume, so it outlives the container"


def test_worker_data_dir_is_a_volume(compose: dict[str, Any]) -> None:
    worker = _service(compose, "worker")
    data_dir = _environment(worker).get("DEMANDMON_WORKER_DATA_DIR")
    assert data_dir, "the worker's data folder must be set"
    mounts = _volume_targets(worker)
    assert data_dir in mounts, f"{data_dir} is not a mounted volume: {mounts}"
    # Named, so that Docker seeds it with the image's ownership of the folder.
    assert mounts[data_dir] in compose["volumes"]
    assert data_dir == _dockerfile_env()["DEMANDMON_WORKER_DATA_DIR"]


def test_prometheus_lifecycle_api_is_off(compose: dict[str, Any]) -> None:
    command = _service(compose, "prometheus")["command"]
    assert not any(str(arg).startswith("--web.enable-lifecycle") for arg in command), command


def _dockerfile() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = (REPO / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", text)
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _dockerfile_env() -> dict[str, str]:
    env = {}
    for line in _dockerfile():
        if line.upper().startswith("ENV "):
            for pair in line[4:].split():
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def _image_user() -> tuple[str, str]:
    """The final USER of the image: (user, name or uid as written)."""
    users = [line.split()[1] for line in _dockerfile() if line.upper().startswith("USER ")]
    assert users, "the image must not run as root"
    return users[-1].split(":")[0], users[-1]


def _names_for(user: str) -> set[str]:
    """The user as written plus its name or uid from the useradd line that creates it."""
    names = {user}
    for line in _dockerfile():
        for command in line.split("&&"):
            if "useradd" not in command:
                continue
            words = command.split()
            uid = words[words.index("--uid") + 1] if "--uid" in words else None
            name = words[-1]
            if user in (uid, name):
                names |= {name} | ({uid} if uid else set())
    return names


def test_image_runs_as_a_dedicated_user() -> None:
    user, written = _image_user()
    assert user not in {"root", "0", "nobody", "65534"}, written
    names = _names_for(user)
    assert len(names) == 2, f"USER {written} is not created by a useradd with --uid in the image"


def test_image_creates_the_data_dir_owned_by_its_user() -> None:
    data_dir = _dockerfile_env().get("DEMANDMON_WORKER_DATA_DIR")
    assert data_dir, "the image must set DEMANDMON_WORKER_DATA_DIR"
    owners = _names_for(_image_user()[0])
    commands = [c.split() for line in _dockerfile() for c in line.split("&&")]
    owned = False
    for words in commands:
        if data_dir not in words:
            continue
        if "install" in words and "-d" in words and "-o" in words:
            owned |= words[words.index("-o") + 1] in owners
        if "chown" in words:
            args = [w for w in words[words.index("chown") + 1 :] if not w.startswith("-")]
            owned |= args[0].split(":")[0] in owners
    assert owned, f"{data_dir} is not created owned by the image's user ({sorted(owners)})"
