"""deploy/thresholds.yaml: the committed file loads, and every kind of mistake in it is
reported as one clear line naming the key to fix."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from demandmon.alerting.thresholds import (
    Thresholds,
    ThresholdsError,
    load_thresholds,
    parse_thresholds,
)
from schemas.vocabulary import BCU_CODES

ROOT = Path(__file__).resolve().parents[2]
THRESHOLDS = ROOT / "deploy" / "thresholds.yaml"

Doc = dict[str, Any]


def committed() -> Doc:
    data: Doc = yaml.safe_load(THRESHOLDS.read_text())
    return data


def parse(doc: Doc) -> Thresholds:
    return parse_thresholds(yaml.safe_dump(doc), "thresholds.yaml")


def test_committed_thresholds_load() -> None:
    th = load_thresholds(THRESHOLDS)
    assert th.defaults.rcrp_deployment_rate.max_share == 0.35
    assert th.defaults.oldest_open_igrade.max_age_seconds == 900
    assert th.defaults.igrade_attended_within_target.min_share == 0.90
    assert th.pipeline.feed_stale_after_seconds == 300
    assert th.sources.alerts == "live"  # replays alert only when opted in
    assert th.defaults.sgrade_attended_within_target.min_share == 0.90
    assert th.defaults.s136_handover_over_60_minutes.within_seconds == 3600
    assert th.sources.feed_stale == "live"
    assert th.alerts.worker_down.for_ == "2m"
    assert th.alerts.partition_stalled.severity == "critical"
    assert th.pipeline.partition_stall_window == "5m"
    assert th.pipeline.dead_letter_lost_window == "15m"
    assert th.pipeline.redis_rewind_window == "1h"
    above = th.defaults.above_expected  # score 2 = the expected band's upper edge
    assert (above.min_score, above.min_recent, above.min_weeks) == (2.0, 5, 1)
    assert th.alerts.above_expected.for_ == "30m"
    assert th.for_bcu("AW").above_expected.min_score == 3.0
    assert th.for_bcu("AW").above_expected.min_recent == 5  # the rest from the defaults


def test_overrides_are_merged_over_the_defaults() -> None:
    th = load_thresholds(THRESHOLDS)
    aw = th.for_bcu("AW")
    assert aw.rcrp_deployment_rate.max_share == 0.40
    # Keys the override does not name come from the defaults.
    assert aw.rcrp_deployment_rate.min_incidents == th.defaults.rcrp_deployment_rate.min_incidents
    assert aw.s136_in_custody == th.defaults.s136_in_custody
    assert th.for_bcu("NE") == th.defaults
    assert {code for code in BCU_CODES if th.for_bcu(code) != th.defaults} == {"AW", "CE"}


def test_no_overrides_means_defaults_everywhere() -> None:
    doc = committed()
    doc["bcu_overrides"] = None
    th = parse(doc)
    assert all(th.for_bcu(code) == th.defaults for code in BCU_CODES)


def test_runbook_url_points_at_the_alert_anchor() -> None:
    th = load_thresholds(THRESHOLDS)
    assert th.runbook_url("DemandmonWorkerDown").endswith("/docs/runbook.md#demandmonworkerdown")


def _set(path: str, value: object) -> Callable[[Doc], None]:
    def apply(doc: Doc) -> None:
        *parents, last = path.split(".")
        node = doc
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value

    return apply


def _delete(path: str) -> Callable[[Doc], None]:
    def apply(doc: Doc) -> None:
        *parents, last = path.split(".")
        node = doc
        for key in parents:
            node = node[key]
        del node[last]

    return apply


INVALID = [
    pytest.param(
        _set("bcu_overrides.XX", {"igrade_open_list": {"max_open": 5}}),
        "bcu_overrides: unknown BCU 'XX' (known: AW AS CE CN EA NA NE NW SE SN SW WA)",
        id="unknown-bcu",
    ),
    pytest.param(
        _set("bcu_overrides.aw", {"igrade_open_list": {"max_open": 5}}),
        "unknown BCU 'aw'",
        id="bcu-code-is-case-sensitive",
    ),
    pytest.param(
        _set("defaults.rcrp_deployment_rate.max_share", 1.5),
        "defaults.rcrp_deployment_rate.max_share: Input should be less than or equal to 1 "
        "(got 1.5)",
        id="rate-above-1",
    ),
    pytest.param(
        _set("defaults.igrade_attended_within_target.min_share", -0.1),
        "defaults.igrade_attended_within_target.min_share: Input should be greater than or "
        "equal to 0 (got -0.1)",
        id="rate-below-0",
    ),
    pytest.param(
        _set("bcu_overrides.AW.rcrp_deployment_rate.max_share", 40),
        "bcu_overrides.AW.rcrp_deployment_rate.max_share: Input should be less than or equal "
        "to 1 (got 40)",
        id="override-rate-given-as-percent",
    ),
    pytest.param(
        _set("defaults.igrade_open_list.max_open", -1),
        "defaults.igrade_open_list.max_open: Input should be greater than or equal to 0 (got -1)",
        id="negative-count",
    ),
    pytest.param(
        _set("bcu_overrides.CE.rcrp_deployment_rate", {"min_incidents": -5}),
        "bcu_overrides.CE.rcrp_deployment_rate.min_incidents: Input should be greater than "
        "or equal to 0 (got -5)",
        id="negative-count-in-override",
    ),
    pytest.param(
        _set("pipeline.feed_stale_after_seconds", 0),
        "pipeline.feed_stale_after_seconds: Input should be greater than 0 (got 0)",
        id="zero-seconds",
    ),
    pytest.param(
        _set("thresholds", {}),
        "(top level): unknown key 'thresholds'",
        id="unknown-top-level-key",
    ),
    pytest.param(
        _set("defaults.igrade_open_list.max_opne", 3),
        "defaults.igrade_open_list: unknown key 'max_opne'",
        id="unknown-key-in-defaults",
    ),
    pytest.param(
        _set("bcu_overrides.CE.igrade_open_lsit", {"max_open": 3}),
        "bcu_overrides.CE: unknown key 'igrade_open_lsit'",
        id="unknown-key-in-override",
    ),
    pytest.param(
        _set("defaults.rcrp_deployment_rate.max_share", "0.35"),
        "defaults.rcrp_deployment_rate.max_share: Input should be a valid number (got '0.35')",
        id="number-as-string",
    ),
    pytest.param(
        _set("defaults.igrade_open_list.max_open", True),
        "defaults.igrade_open_list.max_open: Input should be a valid integer (got True)",
        id="bool-as-count",
    ),
    pytest.param(
        _set("alerts.worker_down.for", "2 minutes"),
        "alerts.worker_down.for: not a Prometheus duration such as 30s, 5m or 1h (got '2 minutes')",
        id="bad-duration",
    ),
    pytest.param(
        _set("alerts.worker_down.severity", "page"),
        "alerts.worker_down.severity: Input should be 'critical' or 'warning' (got 'page')",
        id="bad-severity",
    ),
    pytest.param(
        _delete("alerts.exporter_down"),
        "alerts.exporter_down: missing",
        id="missing-alert-setting",
    ),
    pytest.param(
        _delete("alerts.partition_stalled"),
        "alerts.partition_stalled: missing",
        id="missing-stall-alert-setting",
    ),
    pytest.param(
        _set("pipeline.partition_stall_window", "0m"),
        "pipeline.partition_stall_window: must be longer than zero (got '0m')",
        id="zero-window",
    ),
    pytest.param(
        _set("pipeline.redis_rewind_window", "an hour"),
        "pipeline.redis_rewind_window: not a Prometheus duration such as 30s, 5m or 1h "
        "(got 'an hour')",
        id="bad-window",
    ),
    pytest.param(
        _set("sources.alerts", "(live"),
        "sources.alerts: not a valid regular expression",
        id="bad-regex",
    ),
    pytest.param(
        _set("sources.feed_stale", "(?!nov).*"),
        "sources.feed_stale: not a Prometheus (RE2) regular expression (got '(?!nov).*')",
        id="regex-prometheus-cannot-run",
    ),
    pytest.param(
        _set("runbook_base_url", "docs/runbook.md"),
        "runbook_base_url: must be an http(s) URL without spaces or '#'",
        id="relative-runbook-url",
    ),
    pytest.param(
        _set("defaults.above_expected.min_weeks", 0),
        "defaults.above_expected.min_weeks: Input should be greater than or equal to 1 (got 0)",
        id="anomaly-without-history",
    ),
    pytest.param(
        _set("bcu_overrides.AW.above_expected.min_score", 0),
        "bcu_overrides.AW.above_expected.min_score: Input should be greater than 0 (got 0)",
        id="anomaly-score-zero",
    ),
    pytest.param(
        _delete("alerts.above_expected"), "alerts.above_expected: missing", id="anomaly-setting"
    ),
    pytest.param(
        _set("defaults.s136_in_custody", {"amber": 9, "red": 6}),
        "defaults.s136_in_custody: red (6) must not be below amber (9)",
        id="colours-out-of-order",
    ),
]


@pytest.mark.parametrize(("mutate", "expected"), INVALID)
def test_invalid_config_gives_one_clear_line(mutate: Callable[[Doc], None], expected: str) -> None:
    doc = committed()
    mutate(doc)
    with pytest.raises(ThresholdsError) as caught:
        parse(doc)
    lines = caught.value.lines
    assert len(lines) == 1, lines
    assert "\n" not in lines[0]
    assert lines[0].startswith("thresholds.yaml: ")
    assert expected in lines[0]


def test_a_bad_default_is_reported_once_not_per_override() -> None:
    doc = committed()
    # AW and CE override other blocks, so they inherit this bad value.
    doc["defaults"]["oldest_open_igrade"]["max_age_seconds"] = 0
    with pytest.raises(ThresholdsError) as caught:
        parse(doc)
    assert caught.value.lines == [
        "thresholds.yaml: defaults.oldest_open_igrade.max_age_seconds: "
        "Input should be greater than 0 (got 0)"
    ]


def test_several_mistakes_give_one_line_each() -> None:
    doc = committed()
    doc["defaults"]["igrade_open_list"]["max_open"] = -1
    doc["pipeline"]["dead_letter_rate_window"] = "five minutes"
    with pytest.raises(ThresholdsError) as caught:
        parse(doc)
    assert len(caught.value.lines) == 2
    assert str(caught.value) == "\n".join(caught.value.lines)


def test_yaml_syntax_error_names_the_line() -> None:
    with pytest.raises(ThresholdsError) as caught:
        parse_thresholds("defaults:\n  a: [1, 2\n", "thresholds.yaml")
    assert len(caught.value.lines) == 1
    assert caught.value.lines[0].startswith("thresholds.yaml: line ")


def test_top_level_must_be_a_mapping() -> None:
    with pytest.raises(ThresholdsError, match="expected a mapping at the top level"):
        parse_thresholds("- 1\n- 2\n")


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ThresholdsError, match="cannot read"):
        load_thresholds(tmp_path / "thresholds.yaml")
