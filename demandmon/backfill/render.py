"""The samples of each step's figures, from the exporter's own families, re-rendering
only what changed.

A month at 60 s steps is some 40,000 readings of ~900 samples: rendering all of them each
time (about 3 ms) would cost more than reading Redis. So each family function is first
run once over a probe that answers 1 to every counter lookup and notes the field asked for:
that gives, per sample, the one counter field it reads and its scale, straight from the
exporter's code. At each step only the samples of fields whose value changed are made,
as ``value x scale``, which is what the family computes. A family that reads anything
but one field per sample would make the probe give up: then it is rendered whole every
step, as --all-families does."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

from demandmon.exporter.families import Sample, source_samples, state_samples, window_samples
from demandmon.state.reader import SourceFigures
from demandmon.state.record import Counts

OPEN_FAMILY = "demand_open_incidents"
NOW = "now"  # the gauges' part, beside the windows'

Recipe = dict[str, list[tuple[str, tuple[tuple[str, str], ...], float]]]  # field -> samples


class _Probe(Counter[str]):
    """A counter hash that answers 1 to every field and remembers which were asked."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    def get(self, key: str, default: object = None) -> int:
        self.asked.append(key)
        return 1


Render = Callable[[Counter[str]], Iterator[Sample]]


def recipe(render: Render) -> Recipe | None:
    """Per counter field, the samples ``render`` makes of it and their scales; None when a
    sample reads other than exactly one field. (A family looks a sample's field up just
    before it yields the sample, so the fields asked between two samples are the
    second one's.)"""
    probe = _Probe()
    out: Recipe = {}
    for s in render(probe):
        if len(probe.asked) != 1:
            return None
        out.setdefault(probe.asked[0], []).append((s.name, s.labels, s.value))
        probe.asked.clear()
    return out


class Renderer:
    """Samples step by step: by default the windowed families of each window read and the
    open list; with ``every_family`` all the exporter writes, each step in full."""

    def __init__(self, source: str, every_family: bool) -> None:
        self.source = source
        self.every_family = every_family
        self._recipes: dict[str, Recipe | None] = {}
        self._last: dict[str, Counter[str]] = {}

    def _render(self, part: str, fig: SourceFigures) -> Render:
        if part == NOW:
            return lambda now: open_list(_with_now(fig, now))
        return lambda fields: window_samples(self.source, part, Counts(fields))

    def samples(self, fig: SourceFigures) -> Iterator[Sample]:
        """The samples that may have changed since the last call (all, the first time):
        a series not given keeps its value."""
        if self.every_family:
            yield from source_samples(fig)
            return
        for part, fields in (*fig.windows.items(), (NOW, fig.now)):
            yield from self._part(part, fields, fig)

    def _part(self, part: str, fields: Counter[str], fig: SourceFigures) -> Iterator[Sample]:
        render = self._render(part, fig)
        last = self._last.get(part)
        self._last[part] = fields
        if part not in self._recipes:
            self._recipes[part] = recipe(render)
        steps = self._recipes[part]
        if last is None or steps is None:
            yield from render(fields)
            return
        for name in {f for f in fields.keys() | last.keys() if fields[f] != last[f]}:
            for metric, labels, scale in steps.get(name, ()):
                yield Sample(metric, labels, fields[name] * scale)

    def full(self, fig: SourceFigures) -> Iterator[Sample]:
        """Every sample of these figures rendered whole (the check the loop ends with)."""
        if self.every_family:
            yield from source_samples(fig)
            return
        for part, fields in (*fig.windows.items(), (NOW, fig.now)):
            yield from self._render(part, fig)(fields)


def open_list(fig: SourceFigures) -> Iterator[Sample]:
    """The open list alone of the gauges' samples (each read of ``now`` in state_samples
    belongs to the sample it yields next, so the probe skips the others as it goes)."""
    for s in state_samples(fig):
        if s.name == OPEN_FAMILY:
            yield s
        elif isinstance(fig.now, _Probe):
            fig.now.asked.clear()


def _with_now(fig: SourceFigures, now: Counter[str]) -> SourceFigures:
    return SourceFigures(
        fig.source, fig.watermark_s, fig.window_end_s, fig.last_processed_s, now=now
    )
