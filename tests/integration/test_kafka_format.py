"""Formatting the local stack's Kafka log directory with every kind of cluster id the
stack makes: a random URL-safe base64 id starts with "-" once in 64 stack starts, which
Kafka's storage tool once took for an option ("expected one argument")."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from deploy.stack.install import kafka_libs_dir, storage_format_args

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("cluster_id", ["-Ab3dEfGhIjKlMnOpQrStUw", "_Ab3dEfGhIjKlMnOpQrStUw"])
def test_a_cluster_id_starting_with_a_dash_or_underscore_formats(
    tmp_path: Path, cluster_id: str
) -> None:
    props = tmp_path / "server.properties"
    props.write_text(
        "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                "controller.quorum.bootstrap.servers=127.0.0.1:1",
                "listeners=PLAINTEXT://127.0.0.1:2,CONTROLLER://127.0.0.1:1",
                "controller.listener.names=CONTROLLER",
                f"log.dirs={tmp_path / 'data'}",
                "",
            ]
        )
    )
    java = ["java", "-Xmx256m", "-cp", f"{kafka_libs_dir()}/*"]
    done = subprocess.run(
        [*java, *storage_format_args(cluster_id, props)], capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    meta = (tmp_path / "data" / "meta.properties").read_text()
    assert f"cluster.id={cluster_id}\n" in meta
