"""`demandmon stack` and `demandmon replay` against the real services."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

from deploy.stack import control
from deploy.stack.procs import StackError, free_port
from tests.conftest import REPO, Pipeline, Stack
from tests.helpers import wait_for

pytestmark = pytest.mark.integration


def test_up_is_idempotent_and_status_reports(stack: Stack) -> None:
    layout = stack.layout
    before = layout.load()
    assert before is not None
    again = control.up(layout.dir.parent, layout.name)
    assert again.pids == before.pids and again.ports == before.ports
    assert control.status(layout.dir.parent, layout.name) == dict.fromkeys(
        ("kafka", "redis", "prometheus", "alertmanager"), True
    )
    env = layout.env_file.read_text()
    assert f"DEMANDMON_KAFKA_BOOTSTRAP=127.0.0.1:{before.ports['kafka']}" in env


def test_port_in_use_is_one_line_naming_the_service(stack: Stack, tmp_path: Path) -> None:
    busy = stack.state.ports["redis"]  # a port that certainly answers
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "demandmon.cli",
            "stack",
            "up",
            "--name",
            "clash",
            "--dir",
            str(tmp_path),
            "--kafka-port",
            str(busy),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"demandmon stack: kafka: port {busy} on 127.0.0.1 is in use")
    assert "clash/logs/kafka.log" in lines[0]
    assert control.down(tmp_path, "clash", purge=True) == []


def test_commands_find_the_stack_from_any_folder(stack: Stack, tmp_path: Path) -> None:
    """No endpoint variables at all: `--stack FOLDER` names the stack, and `stack status`
    lists the four services, then the worker and the exporter."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEMANDMON_")}
    env["PYTHONPATH"] = str(REPO)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "demandmon.cli", *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
            env=env,
        )

    listed = run("--stack", str(stack.layout.dir), "sources", "list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[-1].endswith(" of 20 sources")
    status = run(
        "stack", "status", "--name", stack.layout.name, "--dir", str(stack.layout.dir.parent)
    )
    assert status.returncode == 0, status.stderr
    services = [line.split()[0] for line in status.stdout.splitlines()]
    assert services[:4] == ["kafka", "redis", "prometheus", "alertmanager"]
    assert {"worker", "exporter"} <= set(services[4:])


def test_two_services_on_one_port_are_refused(tmp_path: Path) -> None:
    port = free_port()
    with pytest.raises(StackError, match="same port"):
        control.up(tmp_path, "twice", {"redis": port, "prometheus": port})


def _created_file(path: Path, times: list[str]) -> Path:
    """One `created` event per time, incidents CAD/0, CAD/1, ..."""
    events = [
        {
            "schema": "cad.incident-event/1",
            "event_id": f"e{i}",
            "incident_id": f"CAD/{i}",
            "type": "created",
            "occurred_at": at,
            "bcu": "SE",
            "opening_code": "ASB",
            "caller": "public",
        }
        for i, at in enumerate(times)
    ]
    path.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    return path


def _on_topic(pipeline: Pipeline) -> int:
    consumer = KafkaConsumer(bootstrap_servers=pipeline.stack.kafka)
    try:
        parts = consumer.partitions_for_topic(pipeline.topic) or set()
        ends = consumer.end_offsets([TopicPartition(pipeline.topic, p) for p in parts])
        return sum(ends.values())
    finally:
        consumer.close()


def _replayed(pipeline: Pipeline) -> list[dict[str, object]]:
    consumer = KafkaConsumer(
        pipeline.topic,
        bootstrap_servers=pipeline.stack.kafka,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
    )
    out = [{**json.loads(m.value), "_headers": dict(m.headers), "_key": m.key} for m in consumer]
    consumer.close()
    return out


def test_replay_shift_keeps_keys_and_tags_the_source(pipeline: Pipeline, tmp_path: Path) -> None:
    path = _created_file(tmp_path / "s.jsonl", ["2022-11-01T10:00:00Z"] * 3)
    pipeline.run("topics")
    result = pipeline.run("replay", str(path), "--source", "last-year", "--shift", "52w")
    assert "sent 3 events" in result.stdout and "events/s" in result.stdout
    sent = _replayed(pipeline)
    assert {m["occurred_at"] for m in sent} == {"2023-10-31T10:00:00.000Z"}
    assert {m["_key"] for m in sent} == {b"CAD/0", b"CAD/1", b"CAD/2"}
    assert all(m["_headers"] == {"demandmon-source": b"last-year"} for m in sent)


def test_replay_stops_cleanly_on_ctrl_c(pipeline: Pipeline, tmp_path: Path) -> None:
    # Ten events an hour apart at 3600x: one a second, so Ctrl-C lands part-way.
    path = _created_file(tmp_path / "slow.jsonl", [f"2023-11-01T{h:02d}:00:00Z" for h in range(10)])
    pipeline.run("topics")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "demandmon.cli",
            "replay",
            str(path),
            "--source",
            "slow",
            "--speed",
            "3600",
            "--quiet",
        ],
        env=pipeline.env,
        cwd=pipeline.workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Interrupt once the first event is on Kafka, however slow the replay was to start.
    wait_for(lambda: _on_topic(pipeline), lambda n: n >= 1, 60, "the first replayed event")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "replay interrupted" in err and "Traceback" not in err
    sent = int(out.split("sent ")[1].split(" events")[0])
    assert 0 < sent < 10
    # Everything reported as sent was flushed to Kafka.
    assert len(_replayed(pipeline)) == sent
