"""Alert e-mail: settings validated, Alertmanager routes every alert to the webhook and
by e-mail, by severity, with a BCU's own recipients added for that BCU (checked with the
real amtool), and only `live` alerts unless the thresholds opt a replay in."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from demandmon.alerting.alertmanager import render_alertmanager
from demandmon.alerting.email import EmailRouting, email_routing
from demandmon.alerting.thresholds import THRESHOLDS_FILE, load_thresholds, parse_thresholds
from demandmon.config.cli import main
from demandmon.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parents[2]
needs_amtool = pytest.mark.skipif(not shutil.which("amtool"), reason="amtool not found")

SMTP: dict[str, Any] = {
    "smtp_host": "smtp.force.example",
    "smtp_port": 587,
    "smtp_from": "demandmon@force.example",
    "alert_email_to": "duty@force.example,control@force.example",
    "alert_email_bcu_to": "NE=ne@force.example,NE=ne2@force.example,AW=aw@force.example",
}


def test_no_smtp_host_means_no_email() -> None:
    assert email_routing(Settings()) is None


def test_settings_become_routing() -> None:
    routing = email_routing(Settings(**SMTP))
    assert routing == EmailRouting(
        smarthost="smtp.force.example:587",
        sender="demandmon@force.example",
        to=("duty@force.example", "control@force.example"),
        by_bcu={"NE": ("ne@force.example", "ne2@force.example"), "AW": ("aw@force.example",)},
        require_tls=True,
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("smtp_host", "smtp host"),
        ("smtp_port", 0),
        ("smtp_from", "not an address"),
        ("alert_email_to", "a@force.example;b@force.example"),
        ("alert_email_bcu_to", "ne=a@force.example"),
        ("alert_email_bcu_to", "NE:a@force.example"),
    ],
)
def test_bad_settings_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        Settings(**{**SMTP, field: value})


def test_unknown_bcu_or_missing_sender_or_recipients_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown BCU"):
        email_routing(Settings(**{**SMTP, "alert_email_bcu_to": "ZZ=a@force.example"}))
    with pytest.raises(ValueError, match="sender"):
        email_routing(Settings(**{**SMTP, "smtp_from": ""}))
    with pytest.raises(ValueError, match="recipient"):
        email_routing(Settings(**{**SMTP, "alert_email_to": "", "alert_email_bcu_to": ""}))


def _config(tmp_path: Path) -> Path:
    routing = email_routing(Settings(**SMTP))
    path = tmp_path / "alertmanager.yml"
    path.write_text(render_alertmanager("http://127.0.0.1:5001/alerts", email=routing))
    return path


@needs_amtool
def test_amtool_accepts_the_config_with_email(tmp_path: Path) -> None:
    result = subprocess.run(
        ["amtool", "check-config", str(_config(tmp_path))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@needs_amtool
@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        (["severity=critical", "bcu=NE"], "demandmon-critical,email-critical-NE"),
        (["severity=critical", "bcu=SE"], "demandmon-critical,email-critical"),
        (["severity=warning", "bcu=AW"], "demandmon-warning,email-warning-AW"),
        (
            ["severity=warning", "alertname=DemandmonExporterDown"],
            "demandmon-warning,email-warning",
        ),
        (["alertname=Unlabelled"], "demandmon-warning"),
    ],
)
def test_routes_by_severity_and_bcu_to_webhook_and_email(
    tmp_path: Path, labels: list[str], receivers: str
) -> None:
    result = subprocess.run(
        ["amtool", "config", "routes", "test", f"--config.file={_config(tmp_path)}", *labels],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stdout.strip() == receivers, result.stdout + result.stderr


def test_bcu_recipients_get_their_bcu_as_well_as_everyone() -> None:
    doc = yaml.safe_load(
        render_alertmanager("http://x/alerts", email=email_routing(Settings(**SMTP)))
    )
    receivers = {r["name"]: r for r in doc["receivers"]}
    assert receivers["email-critical"]["email_configs"][0]["to"] == (
        "duty@force.example, control@force.example"
    )
    assert receivers["email-warning-NE"]["email_configs"][0]["to"] == (
        "duty@force.example, control@force.example, ne@force.example, ne2@force.example"
    )
    subject = receivers["email-warning"]["email_configs"][0]["headers"]["Subject"]
    assert "{{ .CommonLabels.alertname }}" in subject and ".CommonLabels.bcu" in subject
    assert doc["global"]["smtp_smarthost"] == "smtp.force.example:587"
    assert doc["route"]["group_by"] == ["alertname", "source", "bcu"]


def test_config_alertmanager_prints_the_settings_email(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key, value in SMTP.items():
        monkeypatch.setenv(f"DEMANDMON_{key.upper()}", str(value))
    monkeypatch.setenv("DEMANDMON_STACK_DIR", "/nonexistent")
    get_settings.cache_clear()
    try:
        assert main(["alertmanager", "--webhook-url", "https://exporter:9464/alerts"]) == 0
    finally:
        get_settings.cache_clear()
    doc = yaml.safe_load(capsys.readouterr().out)
    assert {r["name"] for r in doc["receivers"]} >= {"demandmon-critical", "email-warning-AW"}


def test_only_live_alerts_by_default() -> None:
    th = load_thresholds(ROOT / THRESHOLDS_FILE)
    assert th.sources.alerts == "live"
    text = (ROOT / THRESHOLDS_FILE).read_text().replace("  alerts: live\n", "")
    assert parse_thresholds(text).sources.alerts == "live"  # also when the key is left out
