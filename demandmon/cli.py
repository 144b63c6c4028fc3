"""The `demandmon` console command: one entry point, one subcommand per job.

Each subcommand lives in its own module, imported only when it runs (so that `demandmon
--help` stays fast), through a small function per command that names it: the dependency
stays visible to import-linter and to a reader."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import NamedTuple


def _stack(argv: list[str]) -> int:
    from deploy.stack.cli import main as run

    return run(argv)


def _topics(argv: list[str]) -> int:
    from streams.topics import main as run

    return run(argv)


def _worker(argv: list[str]) -> int:
    from agents.app import main as run

    return run(argv)


def _exporter(argv: list[str]) -> int:
    from demandmon.exporter.server import main as run

    return run(argv)


def _generate(argv: list[str]) -> int:
    from streams.generate.cli import main as run

    return run(argv)


def _replay(argv: list[str]) -> int:
    from streams.replay.cli import main as run

    return run(argv)


def _backfill(argv: list[str]) -> int:
    from demandmon.backfill.cli import main as run

    return run(argv)


def _evaluate(argv: list[str]) -> int:
    from demandmon.evaluate.cli import main as run

    return run(argv)


def _config(argv: list[str]) -> int:
    from demandmon.config.cli import main as run

    return run(argv)


def _demo(argv: list[str]) -> int:
    from demandmon.demo import main as run

    return run(argv)


def _open(argv: list[str]) -> int:
    from demandmon.open_incidents import main as run

    return run(argv)


def _sources(argv: list[str]) -> int:
    from demandmon.sources import main as run

    return run(argv)


def _secrets(argv: list[str]) -> int:
    from deploy.secrets.cli import main as run

    return run(argv)


class Command(NamedTuple):
    run: Callable[[list[str]], int]
    help: str


COMMANDS = {
    "stack": Command(
        _stack, "start, stop or inspect the local Kafka, Redis, Prometheus and Alertmanager"
    ),
    "topics": Command(_topics, "create the incident and dead-letter topics (idempotent)"),
    "worker": Command(_worker, "run the Faust worker that applies events to Redis"),
    "exporter": Command(_exporter, "serve Prometheus metrics computed from Redis at scrape time"),
    "generate": Command(
        _generate, "write a synthetic event stream built to the briefing's figures"
    ),
    "replay": Command(_replay, "send an event file to Kafka under a source name"),
    "backfill": Command(
        _backfill, "turn an event file into Prometheus history (last year without waiting)"
    ),
    "evaluate": Command(
        _evaluate, "print a source's figures from Redis, optionally against another"
    ),
    "open": Command(_open, "list a source's open incidents, oldest first, past target marked"),
    "config": Command(_config, "regenerate alert rules and dashboards from deploy/thresholds.yaml"),
    "demo": Command(_demo, "bring everything up, replay a sample and print what arrived"),
    "sources": Command(
        _sources, "list the sources (live and registered replays) or delete a replay source"
    ),
    "secrets": Command(
        _secrets, "make the certificates and secrets of a secure deployment (docker-compose)"
    ),
}

EPILOG = (
    "Each command has its own help: demandmon COMMAND --help. Commands read the stack's "
    "endpoints from .stack/default/endpoints.env, found in the current folder, a parent "
    "folder, or the checkout demandmon runs from; DEMANDMON_* variables win."
)


def _parser() -> argparse.ArgumentParser:
    """Only for --help: the global options are read by hand, so that everything after the
    command goes to the command untouched."""
    parser = argparse.ArgumentParser(
        prog="demandmon",
        usage="demandmon [--version] [--stack NAME] COMMAND [ARGS ...]",
        description=__doc__.splitlines()[0],
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument(
        "--stack",
        metavar="NAME",
        help="use the local stack NAME (.stack/NAME, found like .stack/default; or a "
        "folder path) for this command; the same as DEMANDMON_STACK_DIR",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, command in COMMANDS.items():
        sub.add_parser(name, help=command.help, add_help=False)
    return parser


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("demandmon")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _fail(message: str) -> int:
    print(f"demandmon: {message} (see demandmon --help)", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    stack: str | None = None
    while args and args[0].startswith("-"):
        option = args.pop(0)
        if option in ("-h", "--help"):
            _parser().print_help()
            return 0
        if option == "--version":
            print(f"demandmon {version()}")
            return 0
        if option == "--stack" or option.startswith("--stack="):
            value = option.partition("=")[2] if "=" in option else (args.pop(0) if args else "")
            if not value or value.startswith("-"):
                return _fail("--stack needs a stack NAME")
            stack = value
            continue
        return _fail(f"unknown option {option}")
    if not args:
        _parser().print_help(sys.stderr)
        return 2
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        known = " ".join(COMMANDS)
        print(f"demandmon: unknown command '{name}' (commands: {known})", file=sys.stderr)
        return 2
    if stack is not None:
        if name == "stack":
            return _fail("--stack is for the other commands; `demandmon stack` takes --name NAME")
        from demandmon.stacks import StackNotFound, find_named_stack

        try:
            os.environ["DEMANDMON_STACK_DIR"] = str(find_named_stack(stack))
        except StackNotFound as exc:
            print(f"demandmon: {exc}", file=sys.stderr)
            return 2
    return COMMANDS[name].run(rest)


if __name__ == "__main__":
    sys.exit(main())
