"""``demandmon generate``: write a synthetic CAD event stream built to a profile's totals."""

from __future__ import annotations

import argparse
import sys
import time

from demandmon.arguments import CommandParser
from streams.generate.build import generate_stream
from streams.generate.profiles import PROFILES
from streams.generate.writer import write_jsonl

PROG = "demandmon generate"


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be a fraction between 0 and 1")
    return value


def _parser() -> CommandParser:
    parser = CommandParser(
        prog=PROG,
        description="Write a synthetic CAD event stream (contract v1, JSON Lines; gzip when "
        "FILE ends .gz) built exactly to a profile's totals.",
        epilog="profiles: met-nov-2022, met-nov-2023 (the RCRP briefing's November totals); "
        "categories-2022, categories-2023 (its category table, to the unit); sample (~50 "
        "incidents); breach (fires the RCRP deployment-rate and s136 alerts for SE); surge "
        "(4 weeks and a day of steady demand, then NE at about 4x its usual demand for the "
        "last 3 hours: the DemandAboveExpected alert fires for NE and no other BCU).",
    )
    parser.add_argument("--profile", required=True, metavar="NAME", help=" ".join(PROFILES))
    parser.add_argument("--seed", required=True, type=int, metavar="N")
    parser.add_argument("--out", required=True, metavar="FILE")
    parser.add_argument(
        "--duplicates",
        type=_fraction,
        default=0.0,
        metavar="FRACTION",
        help="re-emit this fraction of events (same event_id) later in the file",
    )
    parser.add_argument(
        "--shuffle", action="store_true", help="random (seeded) order instead of time order"
    )
    return parser


def _fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str]) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as stop:  # argparse: --help (0) or a bad flag (2, message printed)
        return stop.code if isinstance(stop.code, int) else 2
    if args.profile not in PROFILES:
        return _fail(f"unknown profile {args.profile!r} (choose from {', '.join(PROFILES)})")
    began = time.monotonic()
    events, incidents = generate_stream(args.profile, args.seed, args.duplicates, args.shuffle)
    try:
        written = write_jsonl(args.out, events)
    except OSError as exc:
        return _fail(f"cannot write {args.out}: {exc.strerror or exc}")
    took = time.monotonic() - began
    print(
        f"{PROG}: {written} events, {incidents} incidents, profile {args.profile} "
        f"seed {args.seed} -> {args.out} ({took:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
