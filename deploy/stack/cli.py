"""`demandmon stack up | down | status`.

`status` reports the four services the stack runs, then whether the worker and the
exporter (started by their own commands) answer on the stack's ports, with the worker's
lag per partition.

`up --secure` runs the secure shape of docs/security.md: TLS and a user per role on every
service, secrets in .stack/<name>/secrets (0700), each role's users in
.stack/<name>/roles/<role>.env. The stack remembers it: `up` again keeps it secure.
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


def _parser() -> _Parser:
    parser = _Parser(prog="demandmon stack", description=__doc__)
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("--name", default="default", help="stack name (default: default)")
    parser.add_argument("--dir", type=Path, default=Path(".stack"), help="state folder")
    parser.add_argument("--scrape-interval", default="5s", help="Prometheus scrape interval")
    parser.add_argument("--webhook-url", default="", help="Alertmanager webhook receiver URL")
    parser.add_argument("--purge", action="store_true", help="with down: delete data too")
    parser.add_argument(
        "--secure",
        action="store_true",
        help="with up: TLS and authentication everywhere (docs/security.md)",
    )
    parser.add_argument(
        "--key-prefix",
        default="dm",
        help="with up --secure: the Redis key prefix its users are confined to (default: dm)",
    )
    for port in PORT_NAMES:
        parser.add_argument(f"--{port.replace('_', '-')}-port", type=int, default=0)
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
            )
            layout = StackLayout(args.dir, args.name)
            shape = "secure stack" if state.secure else "stack"
            print(f"{shape} {args.name} is up; endpoints in {layout.env_file}:")
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
