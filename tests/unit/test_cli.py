"""Every command refuses bad input in one line on stderr with a non-zero exit, before it
touches any service."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import pytest


def _run(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The command with nothing listening where Kafka should be."""
    return subprocess.run(
        [sys.executable, "-m", "demandmon.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={
            "PATH": "/usr/bin:/bin",
            "DEMANDMON_KAFKA_BOOTSTRAP": "127.0.0.1:1",
            "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
            **env,
        },
    )


@pytest.mark.parametrize(
    "command",
    [
        "stack",
        "topics",
        "worker",
        "exporter",
        "generate",
        "replay",
        "evaluate",
        "config",
        "demo",
        "sources",
    ],
)
def test_bad_flag_is_one_line(command: str, tmp_path: Path) -> None:
    result = _run(command, "--no-such-flag", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"demandmon {command}")


def test_unknown_command(tmp_path: Path) -> None:
    result = _run("frobnicate", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "demandmon: unknown command 'frobnicate' (commands: stack topics worker exporter "
        "generate replay evaluate config demo sources secrets)"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.jsonl", "--source", "x"], "missing.jsonl: no such file"),
        ([".", "--source", "x"], "is a directory"),
        (["ok.jsonl", "--source", "Bad Name"], "--source must be"),
        (["ok.jsonl", "--source", "unknown"], "--source must be"),
        (["ok.jsonl", "--source", "x", "--shift", "5 parsecs"], "bad duration"),
        (["ok.jsonl", "--source", "x", "--speed", "0"], "--speed must be greater than 0"),
        (["garbage.jsonl", "--source", "x"], "holds no readable events"),
        (["broken.jsonl.gz", "--source", "x"], "unreadable"),
    ],
)
def test_replay_refuses_bad_input(args: list[str], message: str, tmp_path: Path) -> None:
    (tmp_path / "ok.jsonl").write_text(
        '{"incident_id": "A", "occurred_at": "2023-11-01T00:00:00Z"}\n'
    )
    (tmp_path / "garbage.jsonl").write_text("not json\n[1]\n")
    (tmp_path / "broken.jsonl.gz").write_bytes(gzip.compress(b"{}")[:10] + b"garbage" * 9)
    result = _run("replay", *args, cwd=tmp_path)
    assert result.returncode == 2, result
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in result.stderr


def test_replay_says_when_kafka_is_unreachable(tmp_path: Path) -> None:
    (tmp_path / "ok.jsonl").write_text(
        '{"incident_id": "A", "occurred_at": "2023-11-01T00:00:00Z"}\n'
    )
    result = _run("replay", "ok.jsonl", "--source", "x", cwd=tmp_path)
    assert result.returncode == 1
    assert "Kafka at 127.0.0.1:1" in result.stderr.strip().splitlines()[-1]


def test_generate_refuses_unknown_profile(tmp_path: Path) -> None:
    result = _run("generate", "--profile", "nope", "--seed", "1", "--out", "x.jsonl", cwd=tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_setting_is_one_line_naming_the_variable(tmp_path: Path) -> None:
    result = _run("topics", cwd=tmp_path, DEMANDMON_PARTITIONS="twelve")
    assert result.returncode == 2
    assert result.stderr.startswith("demandmon topics: DEMANDMON_PARTITIONS: ")
    assert len(result.stderr.strip().splitlines()) == 1
