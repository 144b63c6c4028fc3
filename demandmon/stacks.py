"""Which local stack a command reads its endpoints from: ``DEMANDMON_STACK_DIR``, or
``.stack/<name>`` found from the current folder upwards or in the checkout, and what to
say when there is none."""

from __future__ import annotations

import os
import re
from pathlib import Path

STACK_DIR_VARIABLE = "DEMANDMON_STACK_DIR"
DEFAULT_STACK = "default"
STACK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class StackNotFound(LookupError):
    """``--stack NAME`` names no stack that has endpoints."""


def checkout_root() -> Path | None:
    """The source checkout this package runs from (an editable install), if it is one."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").is_file() else None


def stack_candidates(name: str, start: Path, checkout: Path | None) -> list[Path]:
    """Where stack ``name`` is looked for: ``.stack/<name>`` in ``start`` and each of its
    parents, then in the checkout demandmon runs from."""
    places = [folder / ".stack" / name for folder in (start, *start.parents)]
    if checkout is not None and checkout / ".stack" / name not in places:
        places.append(checkout / ".stack" / name)
    return places


def looked_in(name: str, start: Path, checkout: Path | None) -> str:
    """The places ``stack_candidates`` tries, in a few words."""
    text = f".stack/{name} in {start} and its parents"
    if checkout is not None and checkout not in (start, *start.parents):
        text += f", and in {checkout}"
    return text


def find_stack(
    name: str = DEFAULT_STACK, start: Path | None = None, checkout: Path | None = None
) -> Path | None:
    """The first candidate folder of stack ``name`` that holds an endpoints.env, or None.
    ``start`` defaults to the current folder, ``checkout`` to checkout_root()."""
    start = Path.cwd() if start is None else start
    checkout = checkout_root() if checkout is None else checkout
    for place in stack_candidates(name, start, checkout):
        if (place / "endpoints.env").is_file():
            return place
    return None


def find_named_stack(name: str) -> Path:
    """The folder ``demandmon --stack NAME`` means: a folder path as given, else stack
    NAME found like the default one. Raises StackNotFound with one line."""
    if "/" in name or name in (".", ".."):
        folder = Path(name).resolve()
        if not (folder / "endpoints.env").is_file():
            raise StackNotFound(f"no stack settings in {folder} (no endpoints.env there)")
        return folder
    if not STACK_NAME.fullmatch(name):
        raise StackNotFound(f"--stack: '{name}' is not a stack name")
    found = find_stack(name)
    if found is None:
        where = looked_in(name, Path.cwd(), checkout_root())
        raise StackNotFound(
            f"no stack '{name}' (looked for {where}); `demandmon stack up --name {name}` starts one"
        )
    return found.resolve()


def stack_dir() -> Path | None:
    """The local stack whose endpoints commands use: DEMANDMON_STACK_DIR when set (also
    by `demandmon --stack NAME`), else .stack/default found from the current folder
    upwards or in the checkout demandmon runs from; None when there is none."""
    given = os.environ.get(STACK_DIR_VARIABLE)
    if given:
        return Path(given)
    return find_stack()


def no_stack_note(base: Path | None) -> str:
    """Why no stack settings were read, and what to do, or "" when they were."""
    if base is not None and (base / "endpoints.env").is_file():
        return ""
    if base is None:
        where = f"looked in {looked_in(DEFAULT_STACK, Path.cwd(), checkout_root())}"
    else:
        where = f"{STACK_DIR_VARIABLE}={base} has no endpoints.env"
    return (
        f"no stack settings found ({where}); run `demandmon stack up` or set {STACK_DIR_VARIABLE}"
    )
