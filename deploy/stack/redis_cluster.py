"""Redis as a cluster of three masters for the local stack (`stack up --redis-cluster`).

Three ``redis-server`` processes with ``cluster-enabled yes``, each with its own port,
cluster bus port (``cluster-port``: a free port, not port + 10000, which may not exist),
folder under ``data/`` and log, AOF ``everysec`` and the stack's password (``requirepass``
and ``masterauth``) like the single Redis. No replicas: it is for trying the product's
cluster client and its hash tags, not for failover. The first `up` joins them with
``redis-cli --cluster create ... --cluster-replicas 0 --cluster-yes`` (the password in
``REDISCLI_AUTH``, never on the command line); every `up` starts the nodes that are not
running (each keeps its identity and slots in its ``nodes.conf``) and waits until every
node reports ``cluster_state:ok``.

The nodes are named by their port names: ``redis`` (the node ``DEMANDMON_REDIS_URL``
names), ``redis_2``, ``redis_3``; each one's bus port is ``<name>_bus``. Their pids are
kept under the same names.
"""

from __future__ import annotations

import os
import subprocess
import time

import redis

from deploy.secrets.files import replace_private
from deploy.stack.layout import StackLayout, StackState, marker
from deploy.stack.procs import StackError, alive, port_in_use, spawn, wait_until

NODES = ("redis", "redis_2", "redis_3")
SLOTS = 16384
# How long a node may be silent before the others count it as failing. Short enough that
# a node restarted by `up` is back in a few seconds, long enough for a busy 2-core box.
NODE_TIMEOUT_MS = 5000
START_TIMEOUT_S = 20.0
CREATE_TIMEOUT_S = 60.0
READY_TIMEOUT_S = 60.0


def bus(node: str) -> str:
    """The port name of a node's cluster bus."""
    return f"{node}_bus"


def port_names() -> list[str]:
    """The ports a cluster stack adds to the single Redis's ``redis``."""
    return [*NODES[1:], *(bus(n) for n in NODES)]


def nodes(state: StackState) -> tuple[str, ...]:
    """The Redis processes of a stack, by pid and port name."""
    return NODES if state.redis_cluster else ("redis",)


def node_conf(layout: StackLayout, state: StackState, node: str) -> str:
    password = state.redis_password
    return "\n".join(
        [
            "bind 127.0.0.1",
            "protected-mode yes",
            f"port {state.ports[node]}",
            "daemonize no",
            f"dir {layout.data(node)}",
            "appendonly yes",
            "appendfsync everysec",
            f"requirepass {password}",
            f"masterauth {password}",
            "save ''",
            "cluster-enabled yes",
            "cluster-config-file nodes.conf",
            f"cluster-port {state.ports[bus(node)]}",
            f"cluster-node-timeout {NODE_TIMEOUT_MS}",
            "",
        ]
    )


def _client(state: StackState, node: str) -> redis.Redis:
    return redis.Redis(
        host="127.0.0.1",
        port=state.ports[node],
        password=state.redis_password,
        socket_timeout=1,
        socket_connect_timeout=1,
    )


def _info(state: StackState, node: str) -> dict[str, str]:
    """A node's CLUSTER INFO, as text values."""
    client = _client(state, node)
    try:
        raw = client.cluster("INFO")
    finally:
        client.close()
    if isinstance(raw, dict):  # redis-py parses the reply
        return {str(k): str(v) for k, v in raw.items()}
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {k.strip(): v.strip() for k, v in pairs}


def _node_answers(state: StackState, node: str) -> bool:
    client = _client(state, node)
    try:
        return bool(client.ping())
    finally:
        client.close()


def _node_running(layout: StackLayout, state: StackState, node: str) -> bool:
    pid = state.pids.get(node)
    if pid is None or not alive(pid, marker(node, layout, state)):
        return False
    try:
        return _node_answers(state, node)
    except redis.RedisError:
        return False


def cluster_ok(state: StackState) -> bool:
    """Every node says ``cluster_state:ok`` (all slots served)."""
    try:
        return all(_info(state, n).get("cluster_state") == "ok" for n in NODES)
    except redis.RedisError:
        return False


def running(layout: StackLayout, state: StackState) -> bool:
    return all(_node_running(layout, state, n) for n in NODES) and cluster_ok(state)


def _start_node(layout: StackLayout, state: StackState, node: str) -> int:
    for port in (node, bus(node)):
        if port_in_use(state.ports[port]):
            raise StackError(
                f"{node}: port {state.ports[port]} on 127.0.0.1 is in use (log: {layout.log(node)})"
            )
    conf = layout.conf(f"{node}.conf")
    replace_private(conf, node_conf(layout, state, node))  # 0600: it holds the password
    proc = spawn(["redis-server", str(conf)], layout.log(node), layout.dir)
    wait_until(
        lambda: _node_answers(state, node),
        service=node,
        proc=proc,
        log_path=layout.log(node),
        timeout_s=START_TIMEOUT_S,
    )
    return proc.pid


def _fresh(state: StackState) -> bool:
    """No node has joined a cluster or holds a slot yet: the cluster is to be created."""
    infos = [_info(state, n) for n in NODES]
    return all(
        i.get("cluster_known_nodes") == "1" and i.get("cluster_slots_assigned") == "0"
        for i in infos
    )


def _create(layout: StackLayout, state: StackState) -> None:
    log = layout.log("redis-cluster")
    argv = [
        "redis-cli",
        "--cluster",
        "create",
        *(f"127.0.0.1:{state.ports[n]}" for n in NODES),
        "--cluster-replicas",
        "0",
        "--cluster-yes",
    ]
    env = {**os.environ, "REDISCLI_AUTH": state.redis_password}
    with open(log, "ab") as out:
        try:
            done = subprocess.run(
                argv, stdout=out, stderr=subprocess.STDOUT, env=env, timeout=CREATE_TIMEOUT_S
            )
        except subprocess.TimeoutExpired:
            raise StackError(f"redis: creating the cluster timed out (log: {log})") from None
    if done.returncode:
        raise StackError(f"redis: creating the cluster failed (log: {log})")


def up(layout: StackLayout, state: StackState) -> None:
    """Start the nodes that are not running, create the cluster the first time, and wait
    until every node reports ``cluster_state:ok``. Saves the state after each start."""
    for node in NODES:
        if not _node_running(layout, state, node):
            state.pids[node] = _start_node(layout, state, node)
            layout.save(state)
    if _fresh(state):
        _create(layout, state)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not cluster_ok(state):
        if time.monotonic() > deadline:
            raise StackError(
                f"redis: the cluster did not reach cluster_state:ok within "
                f"{READY_TIMEOUT_S:.0f} s (logs: {layout.dir / 'logs'}/redis*.log)"
            )
        time.sleep(0.25)
