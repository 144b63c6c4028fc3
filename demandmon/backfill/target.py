"""Where the blocks go: the local stack's Prometheus data folder, or one given."""

from __future__ import annotations

from pathlib import Path

from demandmon.stacks import no_stack_note, stack_dir

# deploy/stack/layout.py keeps a service's data in <stack>/data/<service>
# (StackLayout.data; tests/unit/test_backfill.py holds the two together). The product
# never imports the dev-stack tool, so the path is spelled here.
STACK_DATA = ("data", "prometheus")


class TargetError(ValueError):
    """The destination is unusable: the message is the one line to print."""


def stack_prometheus_data(stack: Path) -> Path:
    return stack.joinpath(*STACK_DATA)


def prometheus_data(into_stack: bool, given: Path | None) -> Path | None:
    """The data folder to move the blocks into, None to leave them in --out."""
    if given is not None:
        if not given.is_dir():
            raise TargetError(f"--prometheus-data {given}: not a folder")
        return given
    if not into_stack:
        return None
    stack = stack_dir()
    note = no_stack_note(stack)
    if stack is None or note:
        raise TargetError(f"--into-stack: {note}")
    data = stack_prometheus_data(stack)
    if not data.is_dir():
        raise TargetError(
            f"--into-stack: no Prometheus data folder at {data}; is the stack up "
            "(demandmon stack up)?"
        )
    return data
