"""`demandmon stack status`: the worker's lag per partition from a canned /metrics text,
the worker and exporter probed on 127.0.0.1, an unknown stack refused, and the dev stack
importing nothing from the product."""

from __future__ import annotations

import ast
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from deploy.stack.cli import main
from deploy.stack.control import PORT_NAMES
from deploy.stack.health import (
    RUNBOOK,
    Partition,
    Probe,
    WorkerReport,
    app_status,
    exporter_status,
    get,
    parse_worker_metrics,
    worker_lines,
    worker_status,
)
from deploy.stack.layout import StackLayout, StackState
from deploy.stack.procs import free_port

ROOT = Path(__file__).resolve().parents[2]


def _worker_metrics(lags: dict[int, int], *, lost: dict[str, int], rewinds: int) -> str:
    """What the worker's /metrics looks like (prometheus_client's text format)."""
    lines = [
        "# HELP demand_worker_partition_lag Messages not yet applied, per partition.",
        "# TYPE demand_worker_partition_lag gauge",
        *(f'demand_worker_partition_lag{{partition="{p}"}} {float(v)}' for p, v in lags.items()),
        "# HELP demand_worker_partition_applied_offset Last offset applied to Redis.",
        "# TYPE demand_worker_partition_applied_offset gauge",
        *(
            f'demand_worker_partition_applied_offset{{partition="{p}"}} '
            f"{float(-1 if p == 0 else 120_000 + p)}"
            for p in lags
        ),
        "# HELP demand_worker_partition_end_offset End offset of the partition.",
        "# TYPE demand_worker_partition_end_offset gauge",
        *(
            f'demand_worker_partition_end_offset{{partition="{p}"}} '
            f"{float((0 if p == 0 else 120_001 + p) + v)}"
            for p, v in lags.items()
        ),
        "# HELP demand_worker_deadletter_failures_total Dead letters given up.",
        "# TYPE demand_worker_deadletter_failures_total counter",
        *(
            f'demand_worker_deadletter_failures_total{{reason="{r}"}} {float(v)}'
            for r, v in lost.items()
        ),
        *(f'demand_worker_deadletter_failures_created{{reason="{r}"}} 1.7e9' for r in lost),
        "# HELP demand_worker_rewinds_total Partitions rewound.",
        "# TYPE demand_worker_rewinds_total counter",
        f"demand_worker_rewinds_total {float(rewinds)}",
        "demand_worker_rewinds_created 1.7e9",
        "# HELP demand_worker_apply_failures_total Batches retried.",
        "# TYPE demand_worker_apply_failures_total counter",
        "demand_worker_apply_failures_total 7.0",
        "",
    ]
    return "\n".join(lines)


HEALTHY = _worker_metrics(dict.fromkeys(range(12), 0), lost={}, rewinds=0)
LAGGING = _worker_metrics(
    {**dict.fromkeys(range(12), 0), 3: 3900, 10: 300, 7: 10},
    lost={"timeout": 2, "unknown_topic": 1},
    rewinds=1,
)


def test_parse_reads_partitions_in_numeric_order_and_sums_the_loss_counters() -> None:
    report = parse_worker_metrics(LAGGING)
    assert [p.partition for p in report.partitions] == [str(p) for p in range(12)]
    assert report.partitions[3] == Partition("3", 3900, 120_003, 123_904)
    assert report.partitions[0] == Partition("0", 0, -1, 0)
    assert (report.deadletters_lost, report.rewinds) == (3, 1)


def test_no_lag_is_one_line() -> None:
    assert worker_status(Probe(True, "", HEALTHY)) == ["worker        up, 12 partitions, lag 0"]


def test_lag_gives_a_total_then_one_line_per_lagging_partition_largest_first() -> None:
    assert worker_status(Probe(True, "", LAGGING)) == [
        "worker        up, lag 4,210 on 3 of 12 partitions, 3 dead letters lost, "
        f"1 Redis rewind; see {RUNBOOK}",
        "  partition 3    lag       3,900  applied offset 120,003  end offset 123,904",
        "  partition 10   lag         300  applied offset 120,010  end offset 120,311",
        "  partition 7    lag          10  applied offset 120,007  end offset 120,018",
    ]
    assert RUNBOOK == "docs/runbook.md#find-and-clear-a-stuck-partition"
    assert "## Find and clear a stuck partition\n" in (ROOT / "docs/runbook.md").read_text()


def test_a_worker_with_nothing_applied_yet_and_no_partitions() -> None:
    one = WorkerReport((Partition("0", 5, -1, 5),))
    assert worker_lines(one)[1] == (
        "  partition 0    lag           5  applied offset none  end offset 5"
    )
    assert worker_lines(one)[0].startswith("worker        up, lag 5 on 1 of 1 partition;")
    # Before its first assignment (or a worker from before partition metrics).
    assert worker_status(Probe(True, "", "# no metrics\n")) == [
        "worker        up, no partitions assigned"
    ]


def test_negative_lag_from_a_stale_end_offset_is_not_lag() -> None:
    report = WorkerReport((Partition("0", -2, 10, 9), Partition("1", 0, 3, 4)))
    assert worker_lines(report) == ["worker        up, 2 partitions, lag 0"]


def test_down_and_unreadable() -> None:
    assert worker_status(Probe(False, "no answer on 127.0.0.1:1/metrics")) == [
        "worker        down (no answer on 127.0.0.1:1/metrics)"
    ]
    [line] = worker_status(Probe(True, "", "demand_worker_partition_lag{partition= oops\n"))
    assert line.startswith("worker        up, but its /metrics could not be read (")
    assert exporter_status(Probe(True, "")) == ["exporter      up"]
    assert exporter_status(Probe(False, "HTTP 500 from 127.0.0.1:9/healthz")) == [
        "exporter      down (HTTP 500 from 127.0.0.1:9/healthz)"
    ]


class _App:
    """A worker and an exporter on 127.0.0.1, serving canned answers."""

    def __init__(self, routes: dict[str, tuple[int, str]]) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                code, body = routes.get(self.path, (404, "not found"))
                self.send_response(code)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def worker() -> Iterator[_App]:
    app = _App({"/metrics": (200, LAGGING)})
    yield app
    app.close()


@pytest.fixture
def exporter() -> Iterator[_App]:
    app = _App({"/healthz": (200, "ok\n")})
    yield app
    app.close()


def test_probes_over_http(worker: _App, exporter: _App) -> None:
    assert get(worker.port, "/metrics").body == LAGGING
    assert get(exporter.port, "/healthz") == Probe(True, "", "ok\n")
    assert get(exporter.port, "/nope") == Probe(
        False, f"HTTP 404 from 127.0.0.1:{exporter.port}/nope"
    )
    closed = free_port()
    assert get(closed, "/healthz") == Probe(False, f"no answer on 127.0.0.1:{closed}/healthz")


def _state(tmp_path: Path, name: str, **ports: int) -> StackState:
    state = StackState(name=name, ports={p: ports.get(p) or free_port() for p in PORT_NAMES})
    StackLayout(tmp_path, name).save(state)
    return state


def test_app_status_reads_the_ports_from_the_stack_state(
    tmp_path: Path, worker: _App, exporter: _App
) -> None:
    state = _state(tmp_path, "s", worker=worker.port, exporter=exporter.port)
    lines = app_status(state)
    assert lines[0].startswith("worker        up, lag 4,210 on 3 of 12 partitions")
    assert lines[-1] == "exporter      up"
    assert len(lines) == 5


def test_status_cli_lists_services_then_worker_and_exporter(
    tmp_path: Path, worker: _App, capsys: pytest.CaptureFixture[str]
) -> None:
    state = _state(tmp_path, "dev", worker=worker.port)
    # No service was started: the four are down (exit 1); the worker answers anyway.
    assert main(["status", "--name", "dev", "--dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[:4] == [f"{s:13} down" for s in ("kafka", "redis", "prometheus", "alertmanager")]
    assert out[4].startswith("worker        up, lag 4,210")
    exporter_port = state.ports["exporter"]
    assert out[-1] == f"exporter      down (no answer on 127.0.0.1:{exporter_port}/healthz)"


def test_status_of_an_unknown_stack_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--name", "nope", "--dir", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "demandmon stack: no such stack: nope\n"


def test_a_wrong_flag_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["status", "--nmae", "x"])
    assert exc.value.code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("demandmon stack: unrecognized arguments: --nmae x")


PRODUCT = {"demandmon", "agents", "streams", "schemas"}


def test_the_dev_stack_imports_nothing_from_the_product() -> None:
    for path in sorted((ROOT / "deploy" / "stack").glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules = [node.module]
            else:
                continue
            for module in modules:
                assert module.split(".")[0] not in PRODUCT, f"{path.name} imports {module}"
