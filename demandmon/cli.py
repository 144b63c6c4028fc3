"""The `demandmon` console command: one entry point, one subcommand per job."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Subcommands implemented in their own modules, each exposing main(argv) -> int.
DELEGATED = {
    "stack": "deploy.stack.cli",
    "topics": "streams.topics",
    "worker": "agents.app",
    "exporter": "demandmon.exporter.server",
    "generate": "streams.generate.cli",
    "replay": "streams.replay.cli",
    "evaluate": "demandmon.evaluate.cli",
    "config": "demandmon.alerting.cli",
    "demo": "demandmon.demo",
    "sources": "demandmon.sources",
    "secrets": "deploy.secrets.cli",
}

HELP = {
    "stack": "start, stop or inspect the local Kafka, Redis, Prometheus and Alertmanager",
    "topics": "create the incident and dead-letter topics (idempotent)",
    "worker": "run the Faust worker that applies events to Redis",
    "exporter": "serve Prometheus metrics computed from Redis at scrape time",
    "generate": "write a synthetic event stream built to the briefing's figures",
    "replay": "send an event file to Kafka under a source name",
    "evaluate": "print a source's figures from Redis, optionally against another",
    "config": "regenerate alert rules and dashboards from deploy/thresholds.yaml",
    "demo": "bring everything up, replay a sample and print what arrived",
    "sources": "list the sources (live and registered replays) or delete a replay source",
    "secrets": "make the certificates and secrets of a secure deployment (docker-compose)",
}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="demandmon", description=__doc__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in DELEGATED:
        sub.add_parser(name, help=HELP[name], add_help=False)
    if not args or args[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if args else 2
    if args[0] not in DELEGATED:
        known = " ".join(DELEGATED)
        print(f"demandmon: unknown command '{args[0]}' (commands: {known})", file=sys.stderr)
        return 2
    module = importlib.import_module(DELEGATED[args[0]])
    code: int = module.main(args[1:])
    return code


if __name__ == "__main__":
    sys.exit(main())
