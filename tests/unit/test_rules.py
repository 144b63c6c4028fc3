"""Prometheus rules and Alertmanager config: generated files are current, promtool and
amtool accept them, promtool unit tests pass and cover every alert in both directions,
and every alert carries what the mixin pattern asks for, with a runbook section."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from demandmon.alerting import names as n
from demandmon.alerting.alertmanager import (
    PLACEHOLDER,
    TEMPLATE_FILE,
    alertmanager_config,
    render_alertmanager,
)
from demandmon.alerting.pipeline_alerts import STUCK_PARTITION_ANCHOR
from demandmon.alerting.recording import recording_rule_names
from demandmon.alerting.rules import ALERTS_FILE, RECORDING_FILE, alert_rules_yaml
from demandmon.alerting.thresholds import (
    THRESHOLDS_FILE,
    Thresholds,
    load_thresholds,
    parse_thresholds,
)
from demandmon.config.cli import main
from demandmon.config.generate import generated_files

ROOT = Path(__file__).resolve().parents[2]
TESTS_DIR = ROOT / "deploy" / "prometheus" / "tests"
RUNBOOK = ROOT / "docs" / "runbook.md"
PER_BCU = {
    n.ALERT_RCRP_RATE,
    n.ALERT_IGRADE_OPEN,
    n.ALERT_IGRADE_OLDEST,
    n.ALERT_IGRADE_ATTENDED,
    n.ALERT_SGRADE_ATTENDED,
    n.ALERT_S136_HANDOVER,
    n.ALERT_ABOVE_EXPECTED,
}

needs_promtool = pytest.mark.skipif(not shutil.which("promtool"), reason="promtool not found")
needs_amtool = pytest.mark.skipif(not shutil.which("amtool"), reason="amtool not found")


def alerts(th: Thresholds) -> list[dict[str, Any]]:
    doc: dict[str, Any] = yaml.safe_load(alert_rules_yaml(th))
    return [rule for group in doc["groups"] for rule in group["rules"]]


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def test_generated_files_are_up_to_date(th: Thresholds) -> None:
    for rel, content in generated_files(th).items():
        path = ROOT / rel
        assert path.exists(), f"{rel} missing: run `demandmon config generate`"
        assert path.read_text() == content, f"{rel} is stale: run `demandmon config generate`"


def test_generation_is_deterministic(th: Thresholds) -> None:
    assert generated_files(th) == generated_files(load_thresholds(ROOT / THRESHOLDS_FILE))


def test_config_generate_check_passes_on_the_repository(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "--check", "--root", str(ROOT)]) == 0
    assert "up to date" in capsys.readouterr().out


def _copy_repo_inputs(dest: Path) -> None:
    for rel in [THRESHOLDS_FILE, *generated_files(load_thresholds(ROOT / THRESHOLDS_FILE))]:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / rel, dest / rel)


def test_config_generate_check_reports_each_drifted_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _copy_repo_inputs(tmp_path)
    thresholds = tmp_path / THRESHOLDS_FILE
    thresholds.write_text(thresholds.read_text().replace("max_open: 25", "max_open: 26"))
    (tmp_path / "grafana/dashboards/old-wall.json").write_text("{}\n")

    assert main(["generate", "--check", "--root", str(tmp_path)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert sorted(line.split(":")[0] for line in lines) == [
        ALERTS_FILE,
        "grafana/dashboards/bcu-detail.json",
        "grafana/dashboards/control-room-wall.json",
        "grafana/dashboards/old-wall.json",
    ]

    assert main(["config", "generate", "--root", str(tmp_path)]) == 0
    (tmp_path / "grafana/dashboards/old-wall.json").unlink()
    assert main(["generate", "--check", "--root", str(tmp_path)]) == 0


def test_config_generate_rejects_an_invalid_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _copy_repo_inputs(tmp_path)
    thresholds = tmp_path / THRESHOLDS_FILE
    thresholds.write_text(thresholds.read_text().replace("max_share: 0.35", "max_share: 35"))
    assert main(["generate", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "defaults.rcrp_deployment_rate.max_share" in err


@needs_promtool
def test_promtool_check_rules() -> None:
    result = run("promtool", "check", "rules", str(ROOT / RECORDING_FILE), str(ROOT / ALERTS_FILE))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_unit_tests_pass() -> None:
    files = sorted(str(p) for p in TESTS_DIR.glob("*.yml"))
    assert files
    result = run("promtool", "test", "rules", *files)
    assert result.returncode == 0, result.stdout + result.stderr


def _unit_tests() -> list[dict[str, Any]]:
    tests: list[dict[str, Any]] = []
    for path in sorted(TESTS_DIR.glob("*.yml")):
        doc = yaml.safe_load(path.read_text())
        for rule_file in doc["rule_files"]:
            assert (path.parent / rule_file).resolve().parent == (ROOT / ALERTS_FILE).parent
        tests.extend(doc["tests"])
    return tests


def test_every_alert_is_shown_firing_and_silent(th: Thresholds) -> None:
    fired: set[str] = set()
    silent: set[str] = set()
    for test in _unit_tests():
        for case in test.get("alert_rule_test", []):
            (fired if case.get("exp_alerts") else silent).add(case["alertname"])
    names = {rule["alert"] for rule in alerts(th)}
    assert names - fired == set(), "alerts never shown firing"
    assert names - silent == set(), "alerts never shown silent"


def test_every_recording_rule_value_is_tested() -> None:
    tested = " ".join(
        case["expr"] for test in _unit_tests() for case in test.get("promql_expr_test", [])
    )
    assert [name for name in recording_rule_names() if name not in tested] == []


def test_per_bcu_alerts_carry_bcu_and_source() -> None:
    for test in _unit_tests():
        for case in test.get("alert_rule_test", []):
            if case["alertname"] in PER_BCU:
                for alert in case.get("exp_alerts") or []:
                    assert {"bcu", "source", "severity"} <= set(alert["exp_labels"])


def _runbook_anchors() -> set[str]:
    # GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens.
    headings = re.findall(r"^#{1,6} (.+)$", RUNBOOK.read_text(), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}


def test_every_alert_is_complete_and_has_a_runbook_section(th: Thresholds) -> None:
    anchors = _runbook_anchors()
    for rule in alerts(th):
        name = rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        assert re.fullmatch(r"\d+[smh]", rule["for"]), name
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description", "runbook_url"}, name
        assert all(annotations.values()), name
        base, _, anchor = annotations["runbook_url"].partition("#")
        assert base == th.runbook_base_url and base.endswith("docs/runbook.md"), name
        assert anchor in anchors, f"{name}: no runbook section #{anchor}"


def test_runbook_has_a_section_per_alert_and_no_orphans(th: Thresholds) -> None:
    sections = re.findall(r"^## (\S+)$", RUNBOOK.read_text(), flags=re.M)
    assert sorted(sections) == sorted(rule["alert"] for rule in alerts(th))


def test_stall_alert_points_at_the_stuck_partition_procedure(th: Thresholds) -> None:
    by_name = {rule["alert"]: rule for rule in alerts(th)}
    description = by_name[n.ALERT_PARTITION_STALLED]["annotations"]["description"]
    assert f"{th.runbook_base_url}#{STUCK_PARTITION_ANCHOR}" in description
    assert STUCK_PARTITION_ANCHOR in _runbook_anchors()


def test_worker_progress_alerts_name_the_worker_and_partition(th: Thresholds) -> None:
    """The stall alert keeps partition and instance; none of the worker alerts carries a
    bcu label, so the per-BCU inhibitions can never hold them back."""
    worker_alerts = {n.ALERT_PARTITION_STALLED, n.ALERT_DEAD_LETTER_LOST, n.ALERT_REDIS_ROLLED_BACK}
    by_name = {rule["alert"]: rule for rule in alerts(th)}
    assert "by (" not in by_name[n.ALERT_PARTITION_STALLED]["expr"]  # no label aggregated away
    fired = [
        (case["alertname"], set(alert["exp_labels"]))
        for test in _unit_tests()
        for case in test.get("alert_rule_test", [])
        for alert in case.get("exp_alerts") or []
        if case["alertname"] in worker_alerts
    ]
    assert {name for name, _ in fired} == worker_alerts
    for name, labels in fired:
        assert "instance" in labels and "bcu" not in labels, name
        assert name != n.ALERT_PARTITION_STALLED or "partition" in labels


def test_counter_alerts_see_a_counter_series_created_by_its_first_increment(
    th: Thresholds,
) -> None:
    # increase() over a series whose first sample is already 1 is 0: the `unless offset`
    # branch is what makes a worker's first lost dead letter alert at all.
    by_name = {rule["alert"]: rule for rule in alerts(th)}
    for name, metric, window in [
        (
            n.ALERT_DEAD_LETTER_LOST,
            "demand_worker_deadletter_failures_total",
            th.pipeline.dead_letter_lost_window,
        ),
        (n.ALERT_REDIS_ROLLED_BACK, "demand_worker_rewinds_total", th.pipeline.redis_rewind_window),
    ]:
        assert by_name[name]["expr"] == (
            f"increase({metric}[{window}]) > 0\nor\n({metric} > 0 unless {metric} offset {window})"
        )


def test_bcu_overrides_become_bcu_matchers(th: Thresholds) -> None:
    by_name = {rule["alert"]: rule for rule in alerts(th)}
    expr = by_name[n.ALERT_IGRADE_OPEN]["expr"]
    assert 'bcu!~"AW|CE"}) > 25' in expr
    assert 'bcu="AW"}) > 35' in expr and 'bcu="CE"}) > 30' in expr
    description = by_name[n.ALERT_IGRADE_OPEN]["annotations"]["description"]
    assert '{{ if eq $labels.bcu "AW" }}35{{ else if eq $labels.bcu "CE" }}30' in description
    # No override for this one: a single expression with no bcu matcher.
    assert not re.search(r"bcu[!=]", by_name[n.ALERT_IGRADE_ATTENDED]["expr"])
    assert "\nor\n" not in by_name[n.ALERT_IGRADE_ATTENDED]["expr"]


def test_sources_regexes_reach_the_expressions() -> None:
    text = (ROOT / THRESHOLDS_FILE).read_text()
    text = text.replace("alerts: live", 'alerts: "live|nov-.*"')
    th = parse_thresholds(text)
    for rule in alerts(th):
        if rule["alert"] in PER_BCU or rule["alert"] == n.ALERT_DEAD_LETTER:
            assert 'source=~"live|nov-.*"' in rule["expr"], rule["alert"]
        elif rule["alert"] == n.ALERT_FEED_STALE:
            assert rule["expr"].count('source=~"live"') == 2


def test_rcrp_rules_never_include_not_rcrp() -> None:
    recording = (ROOT / RECORDING_FILE).read_text()
    assert "not_rcrp" not in recording
    # Incidents and deployed, for each of the four windows.
    assert recording.count(n.RCRP_CATEGORY_MATCHER) == 2 * 4


@needs_amtool
def test_amtool_accepts_the_rendered_config(tmp_path: Path) -> None:
    config = tmp_path / "alertmanager.yml"
    config.write_text(render_alertmanager("http://127.0.0.1:5001/hook?token=a#b"))
    result = run("amtool", "check-config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_amtool
def test_template_with_placeholder_replaced_is_valid(tmp_path: Path) -> None:
    # deploy/stack fills the placeholder with a plain text replace; that must work too.
    text = (ROOT / TEMPLATE_FILE).read_text()
    assert text.count(PLACEHOLDER) == 2
    config = tmp_path / "alertmanager.yml"
    config.write_text(text.replace(PLACEHOLDER, "http://127.0.0.1:5001/"))
    result = run("amtool", "check-config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_amtool
@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["severity=critical", "alertname=DemandmonWorkerDown"], "demandmon-critical"),
        (["severity=warning", "alertname=DemandRcrpDeploymentRateHigh"], "demandmon-warning"),
        (["alertname=Unlabelled"], "demandmon-warning"),
    ],
)
def test_routes_by_severity(tmp_path: Path, labels: list[str], receiver: str) -> None:
    config = tmp_path / "alertmanager.yml"
    config.write_text(render_alertmanager("http://127.0.0.1:5001/"))
    result = run("amtool", "config", "routes", "test", f"--config.file={config}", *labels)
    assert result.stdout.strip() == receiver, result.stdout + result.stderr


def test_alertmanager_groups_and_inhibits_as_designed(th: Thresholds) -> None:
    config = alertmanager_config(PLACEHOLDER)
    assert config["route"]["group_by"] == ["alertname", "source", "bcu"]
    names = {rule["alert"] for rule in alerts(th)}
    sources = []
    for rule in config["inhibit_rules"]:
        for matcher in rule["source_matchers"] + rule["target_matchers"]:
            if matcher.startswith("alertname="):
                assert matcher.split('"')[1] in names
        sources.append(rule["source_matchers"][0])
    stale = config["inhibit_rules"][0]
    assert stale["target_matchers"] == ['bcu=~".+"'] and stale["equal"] == ["source"]
    assert f'alertname="{n.ALERT_WORKER_DOWN}"' in sources
    # A stalled partition freezes some incidents in every BCU, not all: the per-BCU alerts
    # for the rest must still arrive (docs/runbook.md, alert delivery).
    assert f'alertname="{n.ALERT_PARTITION_STALLED}"' not in sources


@pytest.mark.parametrize("url", ["", "ftp://x/y", "http://a b/", "__WEBHOOK_URL__"])
def test_render_alertmanager_rejects_bad_urls(url: str) -> None:
    with pytest.raises(ValueError, match="webhook URL"):
        render_alertmanager(url)
