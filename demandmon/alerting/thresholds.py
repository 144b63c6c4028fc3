"""deploy/thresholds.yaml as a validated model: the one config rules and dashboards share.

Validation is strict (no "0.9" strings turned into numbers, no unknown keys) because a
typo in a threshold silently disables an alert; every problem is reported as one line
naming the key path, so CI output points at the line to fix.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from schemas.vocabulary import BCU_CODES, Bcu

# The one thresholds file, relative to the repository root.
THRESHOLDS_FILE = "deploy/thresholds.yaml"
# Prometheus duration syntax, e.g. 30s, 5m, 1h30m (promtool rejects anything else).
_DURATION = re.compile(r"^(?=\d)(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?$")
# Lookarounds and backreferences compile in Python but not in Prometheus' RE2.
_NOT_RE2 = re.compile(r"\(\?[=!<]|\\[1-9]")


def _duration(value: str) -> str:
    if not _DURATION.match(value):
        raise ValueError(f"not a Prometheus duration such as 30s, 5m or 1h (got {value!r})")
    return value


def _window(value: str) -> str:
    # A range selector or offset of zero is a PromQL error, not an empty window.
    if not re.search(r"[1-9]", _duration(value)):
        raise ValueError(f"must be longer than zero (got {value!r})")
    return value


def _source_regex(value: str) -> str:
    if not value or _NOT_RE2.search(value):
        raise ValueError(f"not a Prometheus (RE2) regular expression (got {value!r})")
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc} (got {value!r})") from None
    return value


def _base_url(value: str) -> str:
    if not re.match(r"^https?://[^\s#\"']+$", value):
        raise ValueError(f"must be an http(s) URL without spaces or '#' (got {value!r})")
    return value


Duration = Annotated[str, AfterValidator(_duration)]
Window = Annotated[str, AfterValidator(_window)]
SourceRegex = Annotated[str, AfterValidator(_source_regex)]
Share = Annotated[float, Field(ge=0.0, le=1.0)]
Count = Annotated[int, Field(ge=0)]
Seconds = Annotated[int, Field(gt=0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class RcrpDeploymentRate(_Model):
    max_share: Share  # alert when deployed / incidents (24 h) is above this
    min_incidents: Count  # ...and the BCU had at least this many RCRP incidents


class IGradeOpenList(_Model):
    max_open: Count  # alert when more I-grade incidents than this are open


class OldestOpenIGrade(_Model):
    # Alert when the oldest UNattended open I incident has waited longer than this (an
    # attended one can stay open for hours and is shown beside it, without a threshold).
    max_age_seconds: Seconds


class AttendedWithinTarget(_Model):
    min_share: Share  # alert when the share attended within target (I 15, S 60 min) is below
    min_incidents: Count  # ...and the BCU had at least this many of that grade (24 h)


class S136Handover(_Model):
    # Alert while the latest handover that waited over 60 minutes is less than this old,
    # in the source's event time (window end): fires however fast handovers arrive.
    within_seconds: Seconds


class S136InCustody(_Model):
    # Dashboard colours only: detentions in progress are not a failure in themselves.
    amber: Count
    red: Count

    @model_validator(mode="after")
    def _ordered(self) -> S136InCustody:
        if self.red < self.amber:
            raise ValueError(f"red ({self.red}) must not be below amber ({self.amber})")
        return self


class AboveExpected(_Model):
    # Alert when the BCU's incidents in the last 60 minutes are more than this many sigmas
    # above expected (demand_expected_score; 2 is the band's upper edge)...
    min_score: Annotated[float, Field(gt=0.0)]
    min_recent: Count  # ...and at least this many: a quiet BCU does not page over three
    # ...and the expectation rests on at least this many previous weeks (of 4): with none
    # the expectation is 0 and every busy hour would look like a surge.
    min_weeks: Annotated[int, Field(ge=1, le=4)]


class BcuThresholds(_Model):
    rcrp_deployment_rate: RcrpDeploymentRate
    igrade_open_list: IGradeOpenList
    oldest_open_igrade: OldestOpenIGrade
    igrade_attended_within_target: AttendedWithinTarget
    sgrade_attended_within_target: AttendedWithinTarget
    s136_handover_over_60_minutes: S136Handover
    s136_in_custody: S136InCustody
    above_expected: AboveExpected


class AlertSetting(_Model):
    for_: Duration = Field(alias="for")
    severity: Literal["critical", "warning"]


class AlertSettings(_Model):
    rcrp_deployment_rate: AlertSetting
    igrade_open_list: AlertSetting
    oldest_open_igrade: AlertSetting
    igrade_attended_within_target: AlertSetting
    sgrade_attended_within_target: AlertSetting
    s136_handover_over_60_minutes: AlertSetting
    above_expected: AlertSetting
    live_feed_stale: AlertSetting
    dead_letter_rejections: AlertSetting
    worker_down: AlertSetting
    exporter_down: AlertSetting
    partition_stalled: AlertSetting
    dead_letter_lost: AlertSetting
    redis_rolled_back: AlertSetting


class Sources(_Model):
    # Sources the per-BCU and dead-letter alerts consider: live only unless the file opts
    # replays in (a replayed month must not page anyone by default).
    alerts: SourceRegex = "live"
    feed_stale: SourceRegex  # sources whose silence is an alert (replays end by design)


class Pipeline(_Model):
    feed_stale_after_seconds: Seconds
    dead_letter_max_per_second: Annotated[float, Field(ge=0.0)]
    dead_letter_rate_window: Duration
    # A partition with lag whose applied offset has not moved for this long is stalled.
    partition_stall_window: Window
    # How long a lost dead letter, or a rewind, keeps its alert firing after the event.
    dead_letter_lost_window: Window
    redis_rewind_window: Window


class Thresholds(_Model):
    runbook_base_url: Annotated[str, AfterValidator(_base_url)]
    sources: Sources
    alerts: AlertSettings
    pipeline: Pipeline
    defaults: BcuThresholds
    # Stored merged over the defaults, so each entry is the BCU's full set.
    bcu_overrides: dict[Bcu, BcuThresholds] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _merge_overrides(cls, data: Any) -> Any:
        # Overrides are partial in the file; merging before validation lets the normal
        # field checks (and their key paths) apply to every overridden value.
        if not isinstance(data, dict):
            return data
        if "bcu_overrides" in data and data["bcu_overrides"] is None:
            data = {**data, "bcu_overrides": {}}  # an empty YAML section means none
        defaults, overrides = data.get("defaults"), data.get("bcu_overrides")
        if not isinstance(defaults, dict) or not isinstance(overrides, dict):
            return data
        merged = {bcu: _deep_merge(defaults, o) for bcu, o in overrides.items()}
        return {**data, "bcu_overrides": merged}

    def for_bcu(self, bcu: str) -> BcuThresholds:
        overrides = {str(code): values for code, values in self.bcu_overrides.items()}
        return overrides.get(bcu, self.defaults)

    def runbook_url(self, alertname: str) -> str:
        return f"{self.runbook_base_url}#{alertname.lower()}"


def _deep_merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = _deep_merge(base.get(key), value) if key in base else value
        return out
    return override


class ThresholdsError(ValueError):
    """The thresholds file is unusable; `lines` holds one message per problem."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def parse_thresholds(text: str, origin: str = "thresholds.yaml") -> Thresholds:
    """Validate thresholds from YAML text (pure: no file access)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ThresholdsError([f"{origin}:{where}: {problem}"]) from None
    if not isinstance(data, dict):
        raise ThresholdsError([f"{origin}: expected a mapping at the top level"])
    try:
        return Thresholds.model_validate(data)
    except ValidationError as exc:
        raise ThresholdsError(_error_lines(exc, origin)) from None


def load_thresholds(path: Path) -> Thresholds:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ThresholdsError([f"{path}: cannot read: {exc.strerror}"]) from None
    return parse_thresholds(text, str(path))


def _error_lines(exc: ValidationError, origin: str) -> list[str]:
    errors = exc.errors()
    default_paths = {err["loc"][1:] for err in errors if err["loc"][:1] == ("defaults",)}
    lines: list[str] = []
    for err in errors:
        loc = tuple(str(part) for part in err["loc"])
        # A bad default is inherited by every override; report it once, at the default.
        if loc[:1] == ("bcu_overrides",) and len(loc) > 2 and loc[2:] in default_paths:
            continue
        lines.append(f"{origin}: {_describe(loc, err['type'], err['msg'], err.get('input'))}")
    return lines


def _describe(loc: tuple[str, ...], kind: str, msg: str, value: object) -> str:
    if loc[:1] == ("bcu_overrides",) and loc[-1] == "[key]":
        known = " ".join(BCU_CODES)
        return f"bcu_overrides: unknown BCU {loc[1]!r} (known: {known})"
    path = ".".join(loc) or "(top level)"
    if kind == "extra_forbidden":
        parent = ".".join(loc[:-1]) or "(top level)"
        return f"{parent}: unknown key {loc[-1]!r}"
    if kind == "missing":
        return f"{path}: missing"
    msg = msg.removeprefix("Value error, ")
    if "(got " in msg or isinstance(value, dict | list):
        return f"{path}: {msg}"
    return f"{path}: {msg} (got {value!r})"
