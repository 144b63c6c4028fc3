"""`demandmon stack up | down | status`.

`status` reports the four services the stack runs, then whether the worker and the
exporter (started by their own commands) answer on the stack's ports, with the worker's
lag per partition.

`up --secure` runs the secure shape of docs/security.md: TLS and a user per role on every
service, secrets in .stack/<name>/secrets (0700), each role's users in
.stack/<name>/roles/<role>.env. The stack remembers it: `up` again keeps it secure.

`up --redis-cluster` runs Redis as a cluster of three masters (a plain stack only) and
writes DEMANDMON_REDIS_CLUSTER=true to the endpoints; the stack remembers it too.
"""

# The dev stack imports nothing from the product (demandmon, agents, streams, schemas),
# only the standard library, its own modules and their third-party clients.

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from deploy.stack.control import PORT_NAMES, down, status, up
from deploy.stack.health import app_status
from deploy.stack.layout import StackLayout
from deploy.stack.procs import StackError


class _Parser(argparse.ArgumentParser):
    """As every `demandmon` command: a wrong flag is one line on stderr, exit code 2."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


# What each --<name>-port flag sets, for its help.
PORT_HELP = {
    "kafka": "Kafka's client listener (DEMANDMON_KAFKA_BOOTSTRAP)",
    "kafka_controller": "Kafka's KRaft controller listener",
    "redis": "Redis (DEMANDMON_REDIS_URL)",
    "prometheus": "Prometheus (DEMANDMON_PROMETHEUS_URL)",
    "alertmanager": "Alertmanager (DEMANDMON_ALERTMANAGER_URL)",
    "worker": "the port `demandmon worker` serves /metrics on (DEMANDMON_WORKER_WEB_PORT); "
    "Prometheus scrapes it",
    "exporter": "the port `demandmon exporter` listens on (DEMANDMON_EXPORTER_PORT); "
    "Prometheus scrapes it",
}


def _parser() -> _Parser:
    parser = _Parser(
        prog="demandmon stack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # --name and --dir for every action, after it: `demandmon stack status --name dev`.
    which = _Parser(add_help=False)
    which.add_argument("--name", default="default", help="the stack's name (default: default)")
    which.add_argument(
        "--dir",
        type=Path,
        default=Path(".stack"),
        help="the folder holding the stacks, one subfolder per name (default: .stack in the "
        "current folder)",
    )
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    up_ = sub.add_parser(
        "up",
        parents=[which],
        help="start the stack's services (what is not running yet) and print its endpoints",
        description="Start Kafka, Redis, Prometheus and Alertmanager as local processes on "
        "127.0.0.1 (what is not running yet) and write their endpoints to "
        "<dir>/<name>/endpoints.env, which every command reads. Ports and the other "
        "options apply when the stack is first made; after that it keeps its own.",
    )
    up_.add_argument(
        "--scrape-interval",
        default="5s",
        metavar="DURATION",
        help="how often Prometheus scrapes the worker and exporter (default: 5s)",
    )
    up_.add_argument(
        "--webhook-url",
        default="",
        metavar="URL",
        help="where Alertmanager sends alerts (default: the exporter's /alerts)",
    )
    up_.add_argument(
        "--secure",
        action="store_true",
        help="TLS and a user per role on every service (docs/security.md)",
    )
    up_.add_argument(
        "--redis-cluster",
        action="store_true",
        help="Redis as a cluster of three masters (plain stack only; clients are told by "
        "DEMANDMON_REDIS_CLUSTER=true in the endpoints)",
    )
    up_.add_argument(
        "--key-prefix",
        default="dm",
        metavar="PREFIX",
        help="with --secure: the Redis key prefix its users are confined to (default: dm)",
    )
    ports = up_.add_argument_group("ports", "0 or absent: a free port is chosen")
    for port in PORT_NAMES:
        ports.add_argument(
            f"--{port.replace('_', '-')}-port",
            type=int,
            default=0,
            metavar="PORT",
            help=PORT_HELP[port],
        )
    down_ = sub.add_parser(
        "down",
        parents=[which],
        help="stop the stack's services (its data is kept unless --purge)",
        description="Stop the stack's services; their data is kept for the next `up`.",
    )
    down_.add_argument(
        "--purge",
        action="store_true",
        help="also delete the stack's folder: data, logs, endpoints and secrets",
    )
    sub.add_parser(
        "status",
        parents=[which],
        help="whether each service, the worker and the exporter answer (exit 1 if a "
        "service is down)",
        description="Whether Kafka, Redis, Prometheus and Alertmanager run, then whether "
        "the worker (with its lag per partition) and the exporter answer on the stack's "
        "ports. Exit 1 when one of the four services is down, whatever the worker and "
        "exporter do.",
    )
    return parser


def _status(root: Path, name: str) -> int:
    saved = StackLayout(root, name).load()
    if saved is None:
        raise StackError(f"no such stack: {name}")
    states = status(root, name)
    for service, running in states.items():
        print(f"{service:13} {'up' if running else 'down'}")
    # Informational: a stack runs without a worker or exporter (each is started by its own
    # command), so only the four services decide the exit code.
    for line in app_status(saved):
        print(line)
    return 0 if all(states.values()) else 1


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.action == "up":
            ports = {p: getattr(args, f"{p}_port") for p in PORT_NAMES}
            state = up(
                args.dir,
                args.name,
                ports,
                args.scrape_interval,
                args.webhook_url,
                secure=args.secure,
                key_prefix=args.key_prefix,
                redis_cluster=args.redis_cluster,
            )
            layout = StackLayout(args.dir, args.name)
            shape = "secure stack" if state.secure else "stack"
            redis_shape = ", Redis a cluster of 3 masters" if state.redis_cluster else ""
            print(f"{shape} {args.name} is up{redis_shape}; endpoints in {layout.env_file}:")
            for key, value in state.endpoints().items():
                # A plain stack's Redis URL holds its password; a secure stack's endpoints
                # name secret files only.
                secret = state.redis_password
                shown = value.replace(secret, "***") if secret and "REDIS" in key else value
                print(f"  {key}={shown}")
            if state.secure:
                print(f"each role's users: {layout.roles_dir}/<role>.env")
        elif args.action == "down":
            stopped = down(args.dir, args.name, purge=args.purge)
            print(f"stack {args.name}: stopped {', '.join(stopped) or 'nothing'}")
        else:
            return _status(args.dir, args.name)
    except StackError as exc:
        print(f"demandmon stack: {exc}", file=sys.stderr)
        return 1
    return 0
