"""`stack status` for the two processes started outside the stack: worker and exporter.

Each is asked on 127.0.0.1 with a 1 s timeout (the worker's /metrics, the exporter's
/healthz): over plain HTTP, or on a secure stack over HTTPS verified against the stack's
CA, with the metrics user's basic auth for /metrics. The worker's metrics are parsed with
prometheus_client to report its lag per partition. Like the rest of deploy/stack, this
imports nothing from the product.
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from deploy.secrets.folder import METRICS_USER
from deploy.stack.layout import StackState
from deploy.stack.web import BasicAuth, request

TIMEOUT_S = 1.0
MAX_BODY = 8 << 20
RUNBOOK = "docs/runbook.md#find-and-clear-a-stuck-partition"
WIDTH = 13  # the service column of `stack status`

LAG = "demand_worker_partition_lag"
APPLIED = "demand_worker_partition_applied_offset"
END = "demand_worker_partition_end_offset"
DEADLETTER_FAILURES = "demand_worker_deadletter_failures_total"
REWINDS = "demand_worker_rewinds_total"

# Local ports only: never through a proxy named in the environment (urlopen would).
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class Probe:
    ok: bool
    detail: str  # why not, when not ok
    body: str = ""


@dataclass(frozen=True)
class Partition:
    partition: str
    lag: int
    applied: int | None = None
    end: int | None = None


@dataclass(frozen=True)
class WorkerReport:
    partitions: tuple[Partition, ...]
    deadletters_lost: int = 0
    rewinds: int = 0


def get(
    port: int,
    path: str,
    timeout_s: float = TIMEOUT_S,
    *,
    ca_file: str = "",
    auth: BasicAuth | None = None,
) -> Probe:
    """GET http://127.0.0.1:<port><path> (https when ``ca_file`` is given, verified
    against it); ok only on a 200 answer."""
    where = f"127.0.0.1:{port}{path}"
    try:
        if ca_file:
            status, body = request(
                f"https://{where}", ca_file=ca_file, auth=auth, timeout_s=timeout_s
            )
        else:
            with _OPENER.open(f"http://{where}", timeout=timeout_s) as response:
                status = int(response.status)
                body = response.read(MAX_BODY).decode("utf-8", errors="replace")
    except urllib.error.HTTPError as exc:
        return Probe(False, f"HTTP {exc.code} from {where}")
    except (OSError, http.client.HTTPException, ValueError):
        return Probe(False, f"no answer on {where}")
    if status != 200:
        return Probe(False, f"HTTP {status} from {where}")
    return Probe(True, "", body)


def parse_worker_metrics(text: str) -> WorkerReport:
    """The partition gauges and loss counters from the worker's /metrics text.

    Raises ValueError when the text is not the Prometheus exposition format."""
    lag: dict[str, float] = {}
    applied: dict[str, float] = {}
    end: dict[str, float] = {}
    lost = rewinds = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            partition = sample.labels.get("partition", "")
            if sample.name == LAG and partition:
                lag[partition] = sample.value
            elif sample.name == APPLIED and partition:
                applied[partition] = sample.value
            elif sample.name == END and partition:
                end[partition] = sample.value
            elif sample.name == DEADLETTER_FAILURES:
                lost += sample.value
            elif sample.name == REWINDS:
                rewinds += sample.value
    partitions = tuple(
        Partition(p, _int(lag[p]), _opt_int(applied.get(p)), _opt_int(end.get(p)))
        for p in sorted(lag, key=_partition_order)
    )
    return WorkerReport(partitions, _int(lost), _int(rewinds))


def _int(value: float) -> int:
    return int(value) if value == value and abs(value) != float("inf") else 0  # NaN, Inf: 0


def _opt_int(value: float | None) -> int | None:
    return None if value is None else _int(value)


def _partition_order(partition: str) -> tuple[int, str]:
    return (int(partition), "") if partition.isdigit() else (1 << 30, partition)


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def _offset(value: int | None) -> str:
    if value is None:
        return "?"
    return "none" if value < 0 else f"{value:,}"


def worker_lines(report: WorkerReport) -> list[str]:
    """A summary line, then one line per partition with lag above 0, largest first."""
    total = len(report.partitions)
    lagging = sorted(
        (p for p in report.partitions if p.lag > 0),
        key=lambda p: (-p.lag, _partition_order(p.partition)),
    )
    if not total:
        head = "up, no partitions assigned"
    elif not lagging:
        head = f"up, {_plural(total, 'partition')}, lag 0"
    else:
        lag = sum(p.lag for p in lagging)
        head = f"up, lag {lag:,} on {len(lagging):,} of {_plural(total, 'partition')}"
    if report.deadletters_lost:
        head += f", {_plural(report.deadletters_lost, 'dead letter')} lost"
    if report.rewinds:
        head += f", {_plural(report.rewinds, 'Redis rewind')}"
    if lagging:
        head += f"; see {RUNBOOK}"
    lines = [f"{'worker':{WIDTH}} {head}"]
    for p in lagging:
        lines.append(
            f"  partition {p.partition:<4} lag {p.lag:>11,}"
            f"  applied offset {_offset(p.applied)}  end offset {_offset(p.end)}"
        )
    return lines


def worker_status(probe: Probe) -> list[str]:
    if not probe.ok:
        return [f"{'worker':{WIDTH}} down ({probe.detail})"]
    try:
        report = parse_worker_metrics(probe.body)
    except ValueError as exc:
        return [f"{'worker':{WIDTH}} up, but its /metrics could not be read ({exc})"]
    return worker_lines(report)


def exporter_status(probe: Probe) -> list[str]:
    return [f"{'exporter':{WIDTH}} {'up' if probe.ok else f'down ({probe.detail})'}"]


def app_status(state: StackState, timeout_s: float = TIMEOUT_S) -> list[str]:
    """Lines for the worker and the exporter on the stack's ports."""
    lines: list[str] = []
    worker, exporter = state.ports.get("worker"), state.ports.get("exporter")
    ca_file, auth = "", None
    if state.secure:
        secrets = state.secrets()
        ca_file = str(secrets.ca_cert)
        auth = BasicAuth(METRICS_USER, str(secrets.metrics_password))
    if worker:
        lines += worker_status(get(worker, "/metrics", timeout_s, ca_file=ca_file, auth=auth))
    else:
        lines.append(f"{'worker':{WIDTH}} unknown (no worker port in the stack's state)")
    if exporter:
        # /healthz asks for no credentials (it says nothing).
        lines += exporter_status(get(exporter, "/healthz", timeout_s, ca_file=ca_file))
    else:
        lines.append(f"{'exporter':{WIDTH}} unknown (no exporter port in the stack's state)")
    return lines
