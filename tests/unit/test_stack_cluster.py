"""`stack up --redis-cluster` without starting anything: each node's configuration, the
endpoints that tell clients it is a cluster, and the shapes `up` refuses. (The cluster
itself runs in tests/integration/test_redis_cluster.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.stack import control, redis_cluster
from deploy.stack.layout import StackLayout, StackState, marker
from deploy.stack.procs import StackError


def _cluster_state(name: str = "c") -> StackState:
    names = [*control.PORT_NAMES, *redis_cluster.port_names()]
    ports = {p: 20000 + i for i, p in enumerate(names)}
    return StackState(name=name, ports=ports, redis_password="pw123", redis_cluster=True)


def test_each_node_has_its_own_ports_folder_aof_and_the_password(tmp_path: Path) -> None:
    state = _cluster_state()
    layout = StackLayout(tmp_path, state.name)
    confs = {n: redis_cluster.node_conf(layout, state, n).splitlines() for n in redis_cluster.NODES}
    for node, lines in confs.items():
        assert f"port {state.ports[node]}" in lines
        assert f"cluster-port {state.ports[node + '_bus']}" in lines
        assert f"dir {layout.dir / 'data' / node}" in lines
        assert {"bind 127.0.0.1", "cluster-enabled yes", "appendonly yes"} <= set(lines)
        assert {"appendfsync everysec", "requirepass pw123", "masterauth pw123"} <= set(lines)
    assert len({state.ports[n] for n in redis_cluster.NODES}) == 3
    assert marker("redis_2", layout, state)[1] == f"redis-server 127.0.0.1:{state.ports['redis_2']}"


def test_endpoints_say_cluster_and_name_one_node() -> None:
    env = _cluster_state().endpoints()
    assert env["DEMANDMON_REDIS_CLUSTER"] == "true"
    assert env["DEMANDMON_REDIS_URL"].endswith(f"@127.0.0.1:{_cluster_state().ports['redis']}/0")
    plain = StackState(name="p", ports=_cluster_state().ports, redis_password="pw123")
    assert "DEMANDMON_REDIS_CLUSTER" not in plain.endpoints()


def test_up_refuses_a_secure_cluster_and_clustering_a_plain_stack(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="plain stack only, not with --secure"):
        control.up(tmp_path, "s", secure=True, redis_cluster=True)
    assert not (tmp_path / "s").exists()
    plain = StackState(name="p", ports=_cluster_state().ports, redis_password="pw123")
    StackLayout(tmp_path, "p").save(plain)
    with pytest.raises(StackError, match="exists with a single Redis"):
        control.up(tmp_path, "p", redis_cluster=True)
    StackLayout(tmp_path, "c").save(_cluster_state())
    with pytest.raises(StackError, match="not with --secure"):
        control.up(tmp_path, "c", secure=True)
