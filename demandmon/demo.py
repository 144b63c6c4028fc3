"""`demandmon demo [stop]`: the README's first command. Starts the local stack, the worker
and the exporter, replays synthetic November 2022 and 2023 streams plus a small sample
rebased to look live, then prints live figures and the year-on-year RCRP table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from demandmon.arguments import CommandParser
from demandmon.clients import ClientSetupError
from demandmon.settings import Settings, settings_or_exit
from demandmon.web import metrics_get, web_scheme
from deploy.stack import control
from deploy.stack.layout import StackLayout
from deploy.stack.procs import StackError, alive, spawn, stop
from schemas.vocabulary import LIVE_SOURCE, NOT_RCRP

STACK_DIR = Path(".stack")
STACK_NAME = "default"
SEED = "20231101"
STREAMS = [
    # (profile, source, extra replay flags)
    ("sample", LIVE_SOURCE, ["--rebase", "now"]),
    ("met-nov-2022", "nov-2022", []),
    ("met-nov-2023", "nov-2023", []),
]


def _say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def _run(env: dict[str, str], *args: str) -> None:
    print("$ demandmon " + " ".join(args), flush=True)
    code = subprocess.run([sys.executable, "-m", "demandmon.cli", *args], env=env).returncode
    if code not in (0, 3):
        raise StackError(f"demandmon {args[0]} failed with exit code {code}")


def _services_file(layout: StackLayout) -> Path:
    return layout.dir / "demo-services.json"


def _exporter_url(settings: Settings, env: dict[str, str], path: str) -> str:
    return f"{web_scheme(settings)}://127.0.0.1:{env['DEMANDMON_EXPORTER_PORT']}{path}"


def _start_services(layout: StackLayout, env: dict[str, str], settings: Settings) -> None:
    """The worker and exporter as background processes, reused when already running."""
    path = _services_file(layout)
    known: dict[str, int] = json.loads(path.read_text()) if path.exists() else {}
    for command in ("worker", "exporter"):
        pid = known.get(command)
        if pid is not None and alive(pid, (f"demandmon.cli {command}",)):
            continue
        argv = [sys.executable, "-m", "demandmon.cli", command]
        proc = spawn(argv, layout.log(command), Path.cwd(), env)
        known[command] = proc.pid
        print(f"started {command} (pid {proc.pid}, log {layout.log(command)})")
    path.write_text(json.dumps(known))
    url = _exporter_url(settings, env, "/healthz")
    deadline = time.monotonic() + 60
    while True:
        try:
            metrics_get(settings, url, timeout_s=2)
            return
        except OSError:
            if time.monotonic() > deadline:
                log = layout.log("exporter")
                raise StackError(f"exporter did not answer at {url} (log: {log})") from None
            time.sleep(0.5)


def _stop_services(layout: StackLayout) -> None:
    path = _services_file(layout)
    if not path.exists():
        return
    for command, pid in json.loads(path.read_text()).items():
        stop(pid, (f"demandmon.cli {command}",))
        print(f"stopped {command}")
    path.unlink()


def _live_summary(env: dict[str, str], settings: Settings) -> str:
    from prometheus_client.parser import text_string_to_metric_families

    text = metrics_get(settings, _exporter_url(settings, env, "/metrics"), timeout_s=30).decode()
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.labels.get("source") != LIVE_SOURCE or s.labels.get("window", "24h") != "24h":
                continue
            if s.labels.get("category") == NOT_RCRP:
                continue
            totals[s.name] = totals.get(s.name, 0.0) + s.value
    inc = totals.get("demand_rcrp_incidents", 0)
    dep = totals.get("demand_rcrp_deployed_incidents", 0)
    rate = f"{dep / inc:.0%}" if inc else "n/a"
    return (
        f"live, last 24 h: {inc:.0f} RCRP incidents, {dep:.0f} deployed ({rate}); "
        f"I-grade {totals.get('demand_igrade_incidents', 0):.0f}; "
        f"open now {totals.get('demand_open_incidents', 0):.0f}; "
        f"s136 in custody {totals.get('demand_s136_in_custody', 0):.0f}"
    )


def main(argv: list[str]) -> int:
    parser = CommandParser(prog="demandmon demo", description=__doc__)
    parser.add_argument("action", nargs="?", choices=["up", "stop"], default="up")
    args = parser.parse_args(argv)
    layout = StackLayout(STACK_DIR, STACK_NAME)
    try:
        if args.action == "stop":
            _stop_services(layout)
            stopped = control.down(STACK_DIR, STACK_NAME)
            print(f"stopped {', '.join(stopped) or 'no stack services'}")
            return 0
        _say("starting Kafka, Redis, Prometheus and Alertmanager (local processes)")
        state = control.up(STACK_DIR, STACK_NAME)
        env = {**os.environ, **state.endpoints()}
        for key, value in state.endpoints().items():
            secret = state.redis_password
            print(f"  {key}={value.replace(secret, '***') if secret else value}")
        _run(env, "topics")
        # How to read the exporter back: HTTPS, CA and basic auth when the settings ask.
        settings = settings_or_exit("demandmon demo")
        _say("starting the worker and the exporter")
        _start_services(layout, env, settings)
        data = layout.dir / "demo-data"
        data.mkdir(parents=True, exist_ok=True)
        _say("generating synthetic streams built to the RCRP briefing's figures")
        for profile, _, _ in STREAMS:
            out = data / f"{profile}.jsonl.gz"
            if not out.exists():
                _run(env, "generate", "--profile", profile, "--seed", SEED, "--out", str(out))
        _say("replaying them through Kafka (event time preserved)")
        for profile, source, extra in STREAMS:
            _run(env, "replay", str(data / f"{profile}.jsonl.gz"), "--source", source, *extra)
        _say("waiting for the worker, then the year-on-year evaluation")
        _run(env, "evaluate", "--source", "nov-2023", "--against", "nov-2022", "--wait", "600")
        _say("live figures from the exporter")
        print(_live_summary(env, settings))
        p = state.ports
        _say("where to look")
        print(f"  metrics     {_exporter_url(settings, env, '/metrics')}")
        print(f"  Prometheus  http://127.0.0.1:{p['prometheus']}/classic/graph")
        print(f"  alerts      http://127.0.0.1:{p['prometheus']}/classic/alerts")
        print("  stop it all: bash scripts/demo.sh stop")
    except (StackError, ClientSetupError) as exc:
        print(f"demandmon demo: {exc}", file=sys.stderr)
        return 1
    return 0
