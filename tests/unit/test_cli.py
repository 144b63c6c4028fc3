"""The `demandmon` command as a new user meets it: every command refuses bad input in one
line on stderr with a non-zero exit, before it touches any service; --version and --stack;
settings found from any folder; per-action `stack` help; a closed port refused within
seconds in one line naming the URL; `evaluate --help` without matplotlib."""

from __future__ import annotations

import argparse
import gzip
import importlib.metadata
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from agents import app as worker
from demandmon import kafka_topics
from demandmon.cli import COMMANDS, main
from demandmon.clients import KafkaUnavailable, redis_failure
from demandmon.settings import Settings, get_settings, settings_or_exit
from demandmon.stacks import find_stack, stack_candidates
from deploy.stack.cli import _parser as stack_parser

REPO = Path(__file__).resolve().parents[2]
NO_STACK = "no stack settings found"
# A command against a closed port must give up within this (it took 31-60 s once).
REFUSED_WITHIN_S = 10.0


def closed_port() -> int:
    """A port nothing listens on (bound, then let go)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(
    *args: str, cwd: Path, stack_dir: str | None = "", **env: str
) -> subprocess.CompletedProcess[str]:
    """The command with nothing listening where Kafka should be. ``stack_dir``: the
    DEMANDMON_STACK_DIR to set ("" a folder that does not exist, so that no stack of the
    checkout leaks in; None: unset, for the search itself)."""
    base = {
        "PATH": "/usr/bin:/bin",
        "DEMANDMON_KAFKA_BOOTSTRAP": "127.0.0.1:1",
        "PYTHONPATH": str(REPO),
    }
    if stack_dir is not None:
        base["DEMANDMON_STACK_DIR"] = stack_dir or str(cwd / "no-stack-here")
    return subprocess.run(
        [sys.executable, "-m", "demandmon.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={**base, **env},
    )


def _settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


# -- bad input -----------------------------------------------------------------------------


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
        "generate replay backfill evaluate open config demo sources secrets)"
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


@pytest.mark.parametrize("bootstrap", ["", " ", "127.0.0.1", "127.0.0.1:9092,", "h:99999"])
def test_a_bootstrap_that_is_no_address_is_one_line(bootstrap: str, tmp_path: Path) -> None:
    result = _run("topics", cwd=tmp_path, DEMANDMON_KAFKA_BOOTSTRAP=bootstrap)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("demandmon topics: DEMANDMON_KAFKA_BOOTSTRAP: ")
    assert line.endswith("expected host:port, or several separated by commas")
    assert "Value error" not in line


def test_bootstrap_forms_that_are_accepted() -> None:
    assert _settings(kafka_bootstrap=" a:1 , [::1]:9093").kafka_bootstrap == "a:1,[::1]:9093"
    assert _settings(kafka_bootstrap="kafka:9092").kafka_bootstrap == "kafka:9092"


# -- the entry point: help, --version, lazy commands ----------------------------------------


def test_version(tmp_path: Path) -> None:
    result = _run("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout == f"demandmon {importlib.metadata.version('demandmon')}\n"


def test_help_lists_every_command_and_the_global_options(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name, command in COMMANDS.items():
        assert f"    {name} " in out
        assert command.help.split()[0] in out
    assert "--stack NAME" in out
    assert "--version" in out
    assert main([]) == 2  # no command: the help, on stderr


def test_each_command_has_its_own_help(tmp_path: Path) -> None:
    result = _run("evaluate", "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith("usage: demandmon evaluate")


def test_commands_are_imported_explicitly_not_by_name() -> None:
    source = (REPO / "demandmon" / "cli.py").read_text()
    assert "importlib.import_module" not in source
    for name in COMMANDS:
        assert f"def _{name}(argv: list[str]) -> int:" in source


def test_evaluate_help_does_not_import_matplotlib() -> None:
    probe = (
        "import sys\n"
        "from demandmon.cli import main\n"
        "try:\n"
        "    main(['evaluate', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'numpy')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


# -- per-action stack help -----------------------------------------------------------------


def _actions(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("demandmon stack has no actions")


def test_stack_help_is_per_action_and_every_option_is_explained() -> None:
    actions = _actions(stack_parser())
    assert sorted(actions) == ["down", "status", "up"]
    flags = {
        name: {s for a in parser._actions for s in a.option_strings}
        for name, parser in actions.items()
    }
    assert "--kafka-port" in flags["up"] and "--secure" in flags["up"]
    assert "--purge" not in flags["up"]
    assert "--purge" in flags["down"] and "--kafka-port" not in flags["down"]
    assert flags["status"] == {"-h", "--help", "--name", "--dir"}
    for name, parser in actions.items():
        for action in parser._actions:
            assert action.help, f"stack {name} {action.option_strings} has no help"


def test_stack_up_help_shows_only_ups_options(tmp_path: Path) -> None:
    result = _run("stack", "up", "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith("usage: demandmon stack up")
    assert "--exporter-port PORT" in result.stdout
    assert "--purge" not in result.stdout


# -- settings found from any folder ----------------------------------------------------------


def _stack(root: Path, name: str, **endpoints: str) -> Path:
    folder = root / ".stack" / name
    folder.mkdir(parents=True)
    lines = [f"DEMANDMON_{key.upper()}={value}" for key, value in endpoints.items()]
    (folder / "endpoints.env").write_text("\n".join(lines) + "\n")
    return folder


def test_the_stack_is_looked_for_here_then_in_parents_then_in_the_checkout(
    tmp_path: Path,
) -> None:
    here = tmp_path / "work" / "a" / "b"
    here.mkdir(parents=True)
    checkout = tmp_path / "checkout"
    places = stack_candidates("default", here, checkout)
    assert places[:3] == [
        here / ".stack/default",
        here.parent / ".stack/default",
        tmp_path / "work/.stack/default",
    ]
    assert places[-1] == checkout / ".stack/default"
    assert find_stack("default", here, checkout) is None
    in_checkout = _stack(checkout, "default")
    assert find_stack("default", here, checkout) == in_checkout
    in_parent = _stack(tmp_path / "work", "default")
    assert find_stack("default", here, checkout) == in_parent
    mine = _stack(here, "default")
    assert find_stack("default", here, checkout) == mine
    # A folder without endpoints.env is no stack.
    (here / ".stack" / "empty").mkdir()
    assert find_stack("empty", here, checkout) is None


def test_a_command_finds_the_stack_from_a_subfolder(tmp_path: Path) -> None:
    port = closed_port()
    _stack(tmp_path, "default", redis_url=f"redis://127.0.0.1:{port}/0")
    deeper = tmp_path / "a" / "b"
    deeper.mkdir(parents=True)
    result = _run("sources", "list", cwd=deeper, stack_dir=None)
    assert result.returncode == 1
    assert result.stderr == (
        f"demandmon sources: Redis at redis://127.0.0.1:{port}/0: connection refused\n"
    )


def test_stack_option_picks_a_named_stack(tmp_path: Path) -> None:
    default, other = closed_port(), closed_port()
    _stack(tmp_path, "default", redis_url=f"redis://127.0.0.1:{default}/0")
    _stack(tmp_path, "other", redis_url=f"redis://127.0.0.1:{other}/0")
    (tmp_path / "sub").mkdir()
    for args in (
        ["--stack", "other"],
        ["--stack=other"],
        ["--stack", str(tmp_path / ".stack/other")],
    ):
        result = _run(*args, "evaluate", "--source", "x", cwd=tmp_path / "sub", stack_dir=None)
        assert result.returncode == 1
        assert result.stderr == (
            f"demandmon evaluate: Redis at redis://127.0.0.1:{other}/0: connection refused\n"
        )


def test_stack_option_naming_no_stack_is_one_line(tmp_path: Path) -> None:
    result = _run("--stack", "nope", "sources", "list", cwd=tmp_path, stack_dir=None)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"demandmon: no stack 'nope' (looked for .stack/nope in {tmp_path}")
    assert line.endswith("`demandmon stack up --name nope` starts one")
    result = _run("--stack", "dev", "stack", "status", cwd=tmp_path)
    assert result.returncode == 2
    assert "`demandmon stack` takes --name NAME" in result.stderr


def test_unreached_service_without_stack_settings_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEMANDMON_STACK_DIR", str(tmp_path / "nope"))
    monkeypatch.delenv("DEMANDMON_REDIS_URL", raising=False)
    get_settings.cache_clear()
    try:
        settings = settings_or_exit("demandmon test")
        refused = redis.ConnectionError("Error 111")
        refused.__cause__ = ConnectionRefusedError()
        line = redis_failure(settings, refused).line
        assert line == (
            "Redis at redis://127.0.0.1:6379/0: connection refused; no stack settings found "
            f"(DEMANDMON_STACK_DIR={tmp_path / 'nope'} has no endpoints.env); run "
            "`demandmon stack up` or set DEMANDMON_STACK_DIR"
        )
        # A wrong password is not about where the stack is: no note.
        assert NO_STACK not in redis_failure(settings, redis.AuthenticationError()).line
        # Redis's own variable set: the address is deliberate, no note either.
        monkeypatch.setenv("DEMANDMON_REDIS_URL", "redis://127.0.0.1:6379/0")
        assert NO_STACK not in redis_failure(settings, refused).line
        # Found stack settings: no note.
        _stack(tmp_path, "found")
        monkeypatch.setenv("DEMANDMON_STACK_DIR", str(tmp_path / ".stack" / "found"))
        monkeypatch.delenv("DEMANDMON_REDIS_URL")
        get_settings.cache_clear()
        assert NO_STACK not in redis_failure(settings_or_exit("t"), refused).line
    finally:
        get_settings.cache_clear()


# -- a closed port: one line, naming the URL, within seconds ---------------------------------


@pytest.mark.parametrize(
    ("args", "service"),
    [
        (["topics"], "Kafka"),
        (["replay", "ok.jsonl", "--source", "x"], "Kafka"),
        (["worker"], "Redis"),
        (["exporter"], "Redis"),
        (["evaluate", "--source", "x"], "Redis"),
        (["sources", "list"], "Redis"),
        (["sources", "delete", "x", "--wait", "0"], "Redis"),
    ],
)
def test_a_closed_port_is_one_line_within_seconds(
    args: list[str], service: str, tmp_path: Path
) -> None:
    (tmp_path / "ok.jsonl").write_text(
        '{"incident_id": "A", "occurred_at": "2023-11-01T00:00:00Z"}\n'
    )
    kafka, redis_port = closed_port(), closed_port()
    where = {
        "Kafka": f"Kafka at 127.0.0.1:{kafka}",
        "Redis": f"Redis at redis://127.0.0.1:{redis_port}/0",
    }[service]
    began = time.monotonic()
    result = _run(
        *args,
        cwd=tmp_path,
        DEMANDMON_KAFKA_BOOTSTRAP=f"127.0.0.1:{kafka}",
        DEMANDMON_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
        DEMANDMON_WORKER_WEB_PORT=str(closed_port()),
        DEMANDMON_EXPORTER_PORT=str(closed_port()),
    )
    took = time.monotonic() - began
    assert result.returncode == 1, result
    assert took < REFUSED_WITHIN_S, f"demandmon {args[0]} took {took:.1f} s"
    command = f"demandmon {args[0]}"
    assert result.stderr == f"{command}: {where}: connection refused\n"


def test_the_worker_stops_at_once_when_kafka_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    """With Redis answering, a closed Kafka port stops the worker's start-up wait at once
    (it waited out its 60 s once)."""

    class AnsweringRedis:
        def ping(self) -> bool:
            return True

        def close(self) -> None:
            pass

    monkeypatch.setattr(worker, "redis_client", lambda settings, timeout_s: AnsweringRedis())
    monkeypatch.setattr(kafka_topics, "KafkaAdminClient", lambda **o: pytest.fail("tried"))
    port = closed_port()
    began = time.monotonic()
    with pytest.raises(KafkaUnavailable) as caught:
        worker.wait_for_services(_settings(kafka_bootstrap=f"127.0.0.1:{port}"), wait_s=60)
    assert time.monotonic() - began < 2
    assert str(caught.value) == f"Kafka at 127.0.0.1:{port}: connection refused"


# -- the README keeps up -------------------------------------------------------------------


def _section(title: str) -> str:
    text = (REPO / "README.md").read_text()
    start = text.index(f"\n## {title}\n")
    return text[start : text.index("\n## ", start + 1)]


def test_readme_using_it_lists_every_command() -> None:
    using = _section("Using it")
    for name in COMMANDS:
        assert f"demandmon {name}" in using, f"README 'Using it' misses demandmon {name}"
    assert "--version" in using and "--stack" in using


def test_readme_configuration_lists_every_setting() -> None:
    configuration = _section("Configuration")
    missing = []
    for name in Settings.model_fields:
        variable = f"DEMANDMON_{name.upper()}"
        secret = variable.removesuffix("_FILE") + "[_FILE]"
        if variable not in configuration and secret not in configuration:
            missing.append(variable)
    assert "DEMANDMON_STACK_DIR" in configuration
    assert not missing, f"README 'Configuration' misses {missing}"
