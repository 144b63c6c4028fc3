"""`demandmon backfill`'s pure parts: Prometheus durations, which step a scrape first sees
an event at, the change-or-heartbeat rule (checked against a sample at every step under
Prometheus' lookback), the OpenMetrics file (read back by an OpenMetrics parser and by
promtool itself), and the CLI's one-line refusals before it touches any service."""

from __future__ import annotations

import itertools
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from demandmon.backfill import openmetrics
from demandmon.backfill.durations import DurationError, format_duration, parse_duration_ms
from demandmon.backfill.promtool import blocks_in, create_blocks, find_promtool, move_blocks
from demandmon.backfill.render import Renderer, open_list, recipe
from demandmon.backfill.series import LOOKBACK_MS, SeriesLog, heartbeat_ms
from demandmon.backfill.steps import by_step
from demandmon.backfill.target import stack_prometheus_data
from demandmon.exporter.families import Sample, window_samples
from demandmon.state.reader import SourceFigures
from demandmon.state.record import Counts
from deploy.stack.layout import StackLayout

REPO = Path(__file__).resolve().parents[2]
MIN, WEEK = 60_000, 7 * 86_400_000


# -- durations ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("52w", 52 * WEEK),
        ("104w", 104 * WEEK),
        ("3d", 3 * 86_400_000),
        ("90m", 90 * MIN),
        ("1h30m", 90 * MIN),
        ("1y", 365 * 86_400_000),
        ("2w3d", 2 * WEEK + 3 * 86_400_000),
        ("250ms", 250),
        ("1m30s", 90_000),
        ("0", 0),
    ],
)
def test_prometheus_durations(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize("text", ["", "52", "-1d", "1.5h", "30m1h", "1h 30m", "52W", "w", "1hh"])
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(DurationError, match="Prometheus"):
        parse_duration_ms(text)


def test_durations_are_said_back_in_weeks() -> None:
    assert [format_duration(parse_duration_ms(t)) for t in ("52w", "1h30m", "0")] == [
        "52w",
        "1h30m",
        "0s",
    ]


# -- steps ------------------------------------------------------------------------------------


def test_events_are_seen_at_the_first_step_at_or_after_the_stream_reached_them() -> None:
    events = [(10_000, "a"), (60_000, "b"), (61_000, "c"), (30_000, "late"), (200_000, "d")]
    assert list(by_step(events, MIN)) == [
        (60_000, ["a", "b"]),  # b at exactly 60 s is seen by the scrape at 60 s
        # an event earlier than the stream has reached is sent when it comes in the file
        (120_000, ["c", "late"]),
        (240_000, ["d"]),
    ]
    assert list(by_step([], MIN)) == []


# -- the change-or-heartbeat rule ---------------------------------------------------------


def _sample(value: float, bcu: str = "AW") -> Sample:
    return Sample("demand_rcrp_incidents", (("bcu", bcu), ("window", "all")), value)


def test_heartbeat_is_a_whole_number_of_steps_within_four_minutes() -> None:
    assert heartbeat_ms(60_000) == 240_000
    assert heartbeat_ms(90_000) == 180_000
    assert heartbeat_ms(15_000) == 240_000
    assert heartbeat_ms(240_000) == 240_000


def test_a_series_is_written_when_it_changes_and_every_four_minutes_while_it_stands() -> None:
    log = SeriesLog(MIN)
    log.observe(0, [_sample(1)])
    log.observe(60_000, [_sample(1)])  # unchanged: no sample
    log.observe(120_000, [_sample(2)])
    log.observe(660_000, [])  # nothing new; the stream ends here
    (key,) = log.series()
    assert list(log.points(key)) == [
        (0, 1.0),
        (120_000, 2.0),
        (360_000, 2.0),
        (600_000, 2.0),
        (660_000, 2.0),  # the last step, so the series ends on its final value
    ]
    assert log.changes() == 2


def _lookback_value(points: list[tuple[int, float]], at: int) -> float | None:
    """What a Prometheus instant query at ``at`` reads: the latest sample within 5 min."""
    seen = [v for t, v in points if at - LOOKBACK_MS < t <= at]
    return seen[-1] if seen else None


@pytest.mark.parametrize("step_s", [15, 60, 90, 240])
def test_any_instant_reads_what_a_scrape_at_that_step_showed(step_s: int) -> None:
    rng = random.Random(step_s)
    step = step_s * 1000
    log = SeriesLog(step)
    truth: dict[int, float] = {}
    value = 0.0
    for i in range(1, 400):
        if rng.random() < 0.15:
            value = float(rng.randrange(5))
        at = i * step
        truth[at] = value
        log.observe(at, [_sample(value)])
    points = list(log.points(log.series()[0]))
    # fewer lines than a sample per step, unless a step is the whole 4 minutes
    assert len(points) < len(truth) or step == heartbeat_ms(step)
    assert [t for t, _ in points] == sorted({t for t, _ in points})
    for at, want in truth.items():
        for inside in (at, at + step - 1):  # the scrape's own instant and until the next
            assert _lookback_value(points, inside) == want, (at, inside)


def test_steps_must_increase() -> None:
    log = SeriesLog(MIN)
    log.observe(60_000, [_sample(1)])
    with pytest.raises(ValueError, match="increase"):
        log.observe(60_000, [_sample(2)])


# -- rendering only what changed --------------------------------------------------------


def _fields() -> dict[str, list[str]]:
    """The counter fields each part's families read (from the probe itself)."""
    windows = recipe(lambda f: window_samples("x", "all", Counts(f)))
    now = recipe(lambda f: open_list(SourceFigures("x", 0.0, 0.0, None, now=f)))
    assert windows is not None and now is not None
    assert all(len(v) == 1 for v in now.values())  # one open series per (BCU, grade)
    return {"window": sorted(windows), "now": sorted(now)}


def test_changed_parts_give_what_the_exporter_renders_whole() -> None:
    rng = random.Random(13)
    fields = _fields()
    counts: dict[str, Counter[str]] = {"24h": Counter(), "all": Counter(), "now": Counter()}
    renderer = Renderer("x", every_family=False)
    step_by_step, whole = SeriesLog(MIN), SeriesLog(MIN)
    for i in range(1, 60):
        for part, counter in counts.items():
            counts[part] = counter = Counter(counter)  # a new reading each step
            names = fields["now" if part == "now" else "window"]
            for name in rng.sample(names, rng.randrange(4)):
                counter[name] = rng.randrange(3)
        fig = SourceFigures(
            "x",
            i * 60.0,
            i * 60.0,
            None,
            windows={"24h": counts["24h"], "all": counts["all"]},
            now=counts["now"],
        )
        step_by_step.observe(i * MIN, renderer.samples(fig))
        whole.observe(i * MIN, renderer.full(fig))
    assert step_by_step.series() == whole.series()
    assert len(whole.series()) == 2 * len(list(window_samples("x", "all", Counts({})))) + 60
    for key in whole.series():
        assert list(step_by_step.points(key)) == list(whole.points(key)), key


def test_a_family_reading_other_than_one_field_a_sample_is_rendered_whole() -> None:
    def two_fields(f: Counter[str]) -> Iterator[Sample]:
        yield Sample("demand_rcrp_incidents", (), float(f.get("a", 0) + f.get("b", 0)))

    assert recipe(two_fields) is None


# -- the OpenMetrics file ------------------------------------------------------------------


def _small_log() -> SeriesLog:
    log = SeriesLog(MIN)
    for i, at in enumerate((1_667_260_800_000, 1_667_260_860_000, 1_667_261_400_000)):
        log.observe(
            at,
            [
                _sample(float(i), "AW"),
                _sample(7.0, "SE"),
                Sample("demand_events_applied", (("source", "x"),), float(10 * i)),
                Sample("demand_open_incidents", (("bcu", "AW"), ("grade", "I")), 1.0),
            ],
        )
    return log


def test_openmetrics_has_each_family_once_series_together_and_ends_with_eof() -> None:
    text = "".join(openmetrics.lines(_small_log()))
    assert text.endswith("\n# EOF\n")
    types = [line for line in text.splitlines() if line.startswith("# TYPE")]
    # in the exporter's order, a counter as a counter with its _total samples
    assert types == [
        "# TYPE demand_rcrp_incidents gauge",
        "# TYPE demand_open_incidents gauge",
        "# TYPE demand_events_applied counter",
    ]
    assert 'demand_events_applied_total{source="x"} 20.0 1667261400\n' in text
    assert 'demand_rcrp_incidents{bcu="AW",window="all"} 0.0 1667260800\n' in text
    series = [line.rsplit(" ", 2)[0] for line in text.splitlines() if not line.startswith("#")]
    # each series' samples are contiguous (OpenMetrics does not allow them interleaved)
    assert len(set(series)) == sum(a != b for a, b in itertools.pairwise(series)) + 1

    parsed = text_string_to_metric_families(text)  # type: ignore[no-untyped-call]
    families = {f.name: f for f in parsed}
    assert families["demand_events_applied"].type == "counter"
    aw = [s for s in families["demand_rcrp_incidents"].samples if s.labels["bcu"] == "AW"]
    assert [(float(s.timestamp), s.value) for s in aw] == [
        (1_667_260_800, 0.0),
        (1_667_260_860, 1.0),
        (1_667_261_100, 1.0),
        (1_667_261_340, 1.0),
        (1_667_261_400, 2.0),
    ]


def test_timestamps_are_seconds() -> None:
    assert openmetrics.timestamp(1_667_260_800_000) == "1667260800"
    assert openmetrics.timestamp(1_667_260_800_250) == "1667260800.250"


def test_promtool_makes_blocks_of_the_file(tmp_path: Path) -> None:
    try:
        promtool = find_promtool()
    except RuntimeError:
        pytest.skip("promtool is not installed")
    log = _small_log()
    om = tmp_path / "x.om"
    with om.open("w") as out:
        assert openmetrics.write(log, out) == sum(len(list(log.points(k))) for k in log.series())
    blocks = create_blocks(promtool, om, tmp_path)
    assert len(blocks) == 1 and (blocks[0] / "meta.json").is_file()


def test_blocks_move_into_a_data_folder_whole(tmp_path: Path) -> None:
    out, data = tmp_path / "out", tmp_path / "data"
    block = out / "01M8F91ZV41MWSRHR8SEXHCZ3V"
    (block / "chunks").mkdir(parents=True)
    (block / "meta.json").write_text("{}")
    data.mkdir()
    assert blocks_in(out) == [block]
    assert move_blocks([block], data) == [data / block.name]
    assert sorted(p.name for p in data.iterdir()) == [block.name]
    assert (data / block.name / "meta.json").read_text() == "{}"
    assert not block.exists()


def test_the_stack_prometheus_data_folder_is_where_the_stack_keeps_it(tmp_path: Path) -> None:
    layout = StackLayout(tmp_path, "s")
    assert stack_prometheus_data(layout.dir) == layout.data("prometheus")


# -- the CLI refuses bad input in one line -------------------------------------------------


def _backfill(
    *args: str, cwd: Path, path: str = "/usr/bin:/bin"
) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": path,
        "PYTHONPATH": str(REPO),
        "DEMANDMON_STACK_DIR": str(cwd / "no-stack-here"),
        "DEMANDMON_REDIS_URL": "redis://127.0.0.1:1/0",
    }
    return subprocess.run(
        [sys.executable, "-m", "demandmon.cli", "backfill", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env=env,
    )


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("missing.jsonl", "--source", "last-year"), "missing.jsonl: no such file"),
        ((".", "--source", "last-year"), "is a directory"),
        (("f.jsonl", "--source", "live"), "not 'live'"),
        (("f.jsonl", "--source", "Bad Name"), "--source must be"),
        (("f.jsonl", "--source", "x", "--shift=-52w"), "bad duration '-52w'"),
        (("f.jsonl", "--source", "x", "--shift", "1 year"), "bad duration '1 year'"),
        (("f.jsonl", "--source", "x", "--step", "5m"), "--step must be"),
        (("f.jsonl", "--source", "x", "--out", "f.jsonl"), "not an empty folder"),
        (("f.jsonl", "--source", "x", "--prometheus-data", "nowhere"), "not a folder"),
        (("f.jsonl", "--source", "x", "--into-stack"), "no stack settings found"),
        (("f.jsonl", "--source", "x", "--bogus"), "unrecognized arguments: --bogus"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: tuple[str, ...], said: str) -> None:
    (tmp_path / "f.jsonl").write_text("{}\n")
    result = _backfill(*args, cwd=tmp_path)
    assert result.returncode == 2, result
    assert said in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("demandmon backfill")


def test_a_missing_promtool_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from demandmon.backfill import promtool

    monkeypatch.setattr(promtool, "FALLBACK", tmp_path / "promtool")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(promtool.PromtoolError, match="promtool not found"):
        promtool.find_promtool()


def test_redis_not_answering_is_one_line_and_exit_1(tmp_path: Path) -> None:
    (tmp_path / "f.jsonl").write_text("{}\n")
    result = _backfill("f.jsonl", "--source", "x", cwd=tmp_path)
    assert result.returncode == 1, result
    assert "Redis at redis://127.0.0.1:1/0" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
