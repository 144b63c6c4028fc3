"""`stack up | down | status`: idempotent start and exact stop of the local services.

`up(..., secure=True)` makes (or completes) the stack's secrets folder and runs the secure
shape of docs/security.md; the state remembers it, so a later `up` stays secure.
`up(..., redis_cluster=True)` runs Redis as a cluster of three masters
(deploy/stack/redis_cluster.py), on a plain stack only; remembered the same way.
"""

from __future__ import annotations

import base64
import secrets
import shutil
import uuid
from pathlib import Path

from deploy.secrets.files import SecretsError
from deploy.secrets.folder import generate
from deploy.stack import redis_cluster as cluster
from deploy.stack.install import ensure_debian_packages, ensure_kafka_jars
from deploy.stack.layout import SERVICES, StackLayout, StackState
from deploy.stack.procs import StackError, alive, free_port, port_in_use, stop
from deploy.stack.services import marker, readiness, start_and_wait

PORT_NAMES = (
    "kafka",
    "kafka_controller",
    "redis",
    "prometheus",
    "alertmanager",
    "worker",
    "exporter",
)
# The service that owns each listening port (worker and exporter are started by their CLIs).
PORT_OWNER = {"kafka_controller": "kafka"}


def _new_state(
    layout: StackLayout,
    ports: dict[str, int],
    scrape_interval: str,
    webhook: str,
    secure: bool = False,
    key_prefix: str = "dm",
    redis_cluster: bool = False,
) -> StackState:
    names = [*PORT_NAMES, *(cluster.port_names() if redis_cluster else [])]
    chosen = {p: ports.get(p) or free_port() for p in names}
    if len(set(chosen.values())) != len(chosen):
        raise StackError("stack: two services were given the same port")
    state = StackState(
        name=layout.name,
        ports=chosen,
        # A secure stack's secrets live in files under secrets/, none in the state.
        redis_password="" if secure else secrets.token_hex(16),
        # Kafka wants a url-safe base64 uuid, the shape its random-uuid tool prints.
        kafka_cluster_id=base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="),
        scrape_interval=scrape_interval,
        secure=secure,
        secrets_dir=str(layout.secrets_dir) if secure else "",
        key_prefix=key_prefix,
        redis_cluster=redis_cluster,
    )
    scheme = "https" if secure else "http"
    state.webhook_url = webhook or f"{scheme}://127.0.0.1:{chosen['exporter']}/alerts"
    return state


def _secrets(layout: StackLayout, state: StackState) -> None:
    """Make the secure stack's secrets folder, or complete it (existing files are kept)."""
    try:
        generate(layout.secrets_dir, state.key_prefix)
    except (SecretsError, OSError, ValueError) as exc:
        raise StackError(f"secrets: {exc}") from None


def _running(service: str, layout: StackLayout, state: StackState) -> bool:
    if service == "redis" and state.redis_cluster:
        return cluster.running(layout, state)
    pid = state.pids.get(service)
    if pid is None or not alive(pid, marker(service, layout, state)):
        return False
    try:
        return readiness(service, state)()
    except Exception:
        return False


def up(
    root: Path,
    name: str,
    ports: dict[str, int] | None = None,
    scrape_interval: str = "5s",
    webhook_url: str = "",
    *,
    secure: bool = False,
    key_prefix: str = "dm",
    redis_cluster: bool = False,
) -> StackState:
    """Start what is not running. ``secure`` makes a new stack secure and
    ``redis_cluster`` runs its Redis as a cluster; an existing stack keeps the shape it
    was made with (a plain one is not turned secure or clustered: purge it first)."""
    layout = StackLayout(root, name)
    state = layout.load()
    if (secure or (state is not None and state.secure)) and (
        redis_cluster or (state is not None and state.redis_cluster)
    ):
        raise StackError("--redis-cluster runs on a plain stack only, not with --secure")
    if state is None:
        state = _new_state(
            layout, ports or {}, scrape_interval, webhook_url, secure, key_prefix, redis_cluster
        )
    elif secure and not state.secure:
        raise StackError(
            f"stack {name} exists and is not secure; "
            f"run demandmon stack down --name {name} --purge first"
        )
    elif redis_cluster and not state.redis_cluster:
        raise StackError(
            f"stack {name} exists with a single Redis; "
            f"run demandmon stack down --name {name} --purge first"
        )
    ensure_debian_packages(layout.log("install"))
    ensure_kafka_jars(layout.log("install"))
    if state.secure:
        _secrets(layout, state)
    for service in SERVICES:
        if service == "redis" and state.redis_cluster:
            cluster.up(layout, state)
            continue
        if _running(service, layout, state):
            continue
        owned = [p for p in PORT_NAMES if PORT_OWNER.get(p, p) == service]
        for port_name in owned:
            if port_in_use(state.ports[port_name]):
                raise StackError(
                    f"{service}: port {state.ports[port_name]} on 127.0.0.1 is in use "
                    f"(log: {layout.log(service)})"
                )
        state.pids[service] = start_and_wait(service, layout, state)
        layout.save(state)
    layout.save(state)
    return state


def down(root: Path, name: str, purge: bool = False) -> list[str]:
    """Stop exactly the processes this stack started; returns the services stopped."""
    layout = StackLayout(root, name)
    state = layout.load()
    stopped: list[str] = []
    if state is not None:
        # Reverse order: Prometheus and Alertmanager first, Kafka last.
        for service in reversed(SERVICES):
            # Redis is one process, or one per node of a cluster.
            names = cluster.nodes(state) if service == "redis" else (service,)
            for proc_name in names:
                pid = state.pids.pop(proc_name, None)
                if pid is not None and alive(pid, marker(proc_name, layout, state)):
                    stop(pid, marker(proc_name, layout, state))
                    if service not in stopped:
                        stopped.append(service)
        layout.save(state)
    if purge and layout.dir.exists():
        shutil.rmtree(layout.dir)
    return stopped


def status(root: Path, name: str) -> dict[str, bool]:
    layout = StackLayout(root, name)
    state = layout.load()
    if state is None:
        return dict.fromkeys(SERVICES, False)
    return {service: _running(service, layout, state) for service in SERVICES}
