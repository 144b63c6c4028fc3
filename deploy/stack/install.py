"""Install what the local stack needs when it is missing: Debian packages and Kafka jars."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from deploy.stack.procs import StackError

KAFKA_VERSION = "4.1.1"
POM = Path(__file__).resolve().parent.parent / "kafka" / "pom.xml"

# binary -> Debian package that provides it
DEBIAN_TOOLS: dict[str, str] = {
    "redis-server": "redis-server",
    "redis-cli": "redis-tools",
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "prometheus-alertmanager": "prometheus-alertmanager",
    "amtool": "prometheus-alertmanager",
    "kcat": "kcat",
    "java": "openjdk-17-jre-headless",
    "mvn": "maven",
}


def missing_packages() -> list[str]:
    return sorted({pkg for tool, pkg in DEBIAN_TOOLS.items() if shutil.which(tool) is None})


def ensure_debian_packages(log_path: Path) -> None:
    packages = missing_packages()
    if not packages:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise StackError(f"missing tools; install the Debian packages: {' '.join(packages)}")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with open(log_path, "ab") as log:
        for argv in (
            ["apt-get", "update", "-q"],
            ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
        ):
            if subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, env=env).returncode:
                raise StackError(f"installing {' '.join(packages)} failed (log: {log_path})")


def kafka_libs_dir() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "demandmon" / f"kafka-{KAFKA_VERSION}" / "libs"


def storage_format_args(cluster_id: str, props: Path) -> list[str]:
    """Kafka's storage tool formatting the log directory. The id is joined to its option:
    a random id starts with "-" once in 64 (URL-safe base64), which the tool's parser
    would take for an option and refuse."""
    return [
        "kafka.tools.StorageTool",
        "format",
        "--standalone",
        "--ignore-formatted",
        f"--cluster-id={cluster_id}",
        f"--config={props}",
    ]


def ensure_kafka_jars(log_path: Path) -> Path:
    """Resolve the broker's runtime classpath from Maven Central once, into a cache."""
    libs = kafka_libs_dir()
    done = libs / ".complete"
    if done.exists():
        return libs
    libs.mkdir(parents=True, exist_ok=True)
    argv = [
        "mvn",
        "-q",
        "-B",
        "-f",
        str(POM),
        f"-Dkafka.version={KAFKA_VERSION}",
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={libs}",
    ]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        if subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT).returncode:
            raise StackError(f"kafka: fetching the broker jars with Maven failed (log: {log_path})")
    if not any(libs.glob("kafka_2.13-*.jar")):
        raise StackError(f"kafka: no broker jar after the Maven fetch (log: {log_path})")
    done.write_text(KAFKA_VERSION + "\n")
    return libs
