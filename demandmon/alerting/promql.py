"""Small, pure helpers for writing PromQL text and the human numbers beside it."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from demandmon.alerting.thresholds import BcuThresholds, Thresholds
from schemas.vocabulary import BCU_CODES

T = TypeVar("T", bound=Hashable)


def quote(value: str) -> str:
    """A PromQL double-quoted string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def source_matcher(regex: str) -> str:
    # ".*" matches every source; leaving it out keeps the default rules short to read.
    return "" if regex == ".*" else f"source=~{quote(regex)}"


def selector(metric: str, *matchers: str) -> str:
    parts = [m for m in matchers if m]
    return f"{metric}{{{','.join(parts)}}}" if parts else metric


def number(value: float) -> str:
    """Shortest text that parses back to the same float (0.35, not 0.35000000000000003)."""
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def percent(share: float) -> str:
    return f"{round(share * 100, 2):g}%"


def duration(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{v}{u}" for v, u in ((hours, "h"), (minutes, "m"), (secs, "s")) if v]
    return "".join(parts) or "0s"


@dataclass(frozen=True)
class BcuGroup(Generic[T]):
    matcher: str  # a `bcu` label matcher, "" when every BCU shares the value
    codes: tuple[str, ...]  # the BCUs this value applies to
    value: T
    default: bool  # the London-wide value (also applies to any unlisted bcu value)


def bcu_groups(th: Thresholds, pick: Callable[[BcuThresholds], T]) -> list[BcuGroup[T]]:
    """One group per distinct threshold value, the London-wide default first.

    The default group excludes the overridden BCUs instead of listing its own, so a
    series with any other bcu value still meets the London-wide threshold.
    """
    default = pick(th.defaults)
    members: dict[T, list[str]] = {}
    for code in BCU_CODES:
        members.setdefault(pick(th.for_bcu(code)), []).append(code)
    if list(members) == [default]:
        return [BcuGroup("", BCU_CODES, default, True)]
    others = [(value, codes) for value, codes in members.items() if value != default]
    groups: list[BcuGroup[T]] = []
    if default in members:
        excluded = sorted((c for _, codes in others for c in codes), key=BCU_CODES.index)
        matcher = f"bcu!~{quote('|'.join(excluded))}"
        groups.append(BcuGroup(matcher, tuple(members[default]), default, True))
    for value, codes in others:
        matcher = f"bcu={quote(codes[0])}" if len(codes) == 1 else f"bcu=~{quote('|'.join(codes))}"
        groups.append(BcuGroup(matcher, tuple(codes), value, False))
    return groups


def any_of(exprs: list[str]) -> str:
    """Join per-group expressions with `or`; the groups' bcu matchers never overlap."""
    if len(exprs) == 1:
        return exprs[0]
    wrapped = ["(\n  " + e.replace("\n", "\n  ") + "\n)" if "\n" in e else e for e in exprs]
    return "\nor\n".join(wrapped)


def by_bcu(groups: list[BcuGroup[T]], text: Callable[[T], str]) -> str:
    """Alert template text that states the alerting BCU's own threshold."""
    overrides = [g for g in groups if not g.default]
    default = next((g for g in groups if g.default), None)
    if not overrides:
        return text(groups[0].value)
    parts = []
    for i, group in enumerate(overrides):
        codes = " ".join(quote(c) for c in group.codes)
        parts.append(f"{{{{ {'if' if i == 0 else 'else if'} eq $labels.bcu {codes} }}}}")
        parts.append(text(group.value))
    fallback = default.value if default is not None else overrides[-1].value
    return "".join(parts) + "{{ else }}" + text(fallback) + "{{ end }}"
