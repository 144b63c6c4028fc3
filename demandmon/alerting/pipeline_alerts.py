"""Pipeline alert rules: the feed, the dead-letter topic and the two scrape targets.

These are the alerts that make the per-BCU ones trustworthy; Alertmanager inhibits the
per-BCU alerts while the feed is stale or the worker is down (deploy/alertmanager).
"""

from __future__ import annotations

from demandmon.alerting import names as n
from demandmon.alerting.bcu_alerts import Rule, alert_rule
from demandmon.alerting.promql import duration, number, quote, selector, source_matcher
from demandmon.alerting.thresholds import Thresholds


def feed_stale(th: Thresholds) -> Rule:
    # Not demand_stream_window_end_timestamp_seconds: for live it is "now" by design and
    # never goes stale. Either signal alone means the figures have stopped moving: no
    # batch applied (feed or worker stuck), or batches with no newer event time.
    src = f"source=~{quote(th.sources.feed_stale)}"
    limit = th.pipeline.feed_stale_after_seconds
    processed = selector("demand_stream_last_processed_timestamp_seconds", src)
    watermark = selector("demand_stream_watermark_timestamp_seconds", src)
    expr = (
        f"time() - max by (source) ({processed}) > {limit}\n"
        "or\n"
        f"time() - max by (source) ({watermark}) > {limit}"
    )
    description = (
        "No new {{ $labels.source }} events for {{ $value | humanizeDuration }}: the worker "
        f"applied no batch, or no newer event time, for longer than {duration(limit)}. "
        "Figures and per-BCU alerts for this source are not current."
    )
    summary = "The {{ $labels.source }} feed is silent"
    setting = th.alerts.live_feed_stale
    return alert_rule(th, n.ALERT_FEED_STALE, setting, expr, summary, description)


def dead_letter(th: Thresholds) -> Rule:
    p = th.pipeline
    rejected = selector("demand_events_rejected_total", source_matcher(th.sources.alerts))
    expr = (
        f"sum by (source, reason) (rate({rejected}[{p.dead_letter_rate_window}])) "
        f"> {number(p.dead_letter_max_per_second)}"
    )
    description = (
        '{{ $labels.source }}: {{ printf "%.2f" $value }} events a second went to the '
        "dead-letter topic with reason {{ $labels.reason }} over the last "
        f"{p.dead_letter_rate_window} (limit {number(p.dead_letter_max_per_second)})."
    )
    summary = "Dead-letter rejections rising for {{ $labels.source }}"
    setting = th.alerts.dead_letter_rejections
    return alert_rule(th, n.ALERT_DEAD_LETTER, setting, expr, summary, description)


def worker_down(th: Thresholds) -> Rule:
    expr = f"up{{job={quote(n.JOB_WORKER)}}} == 0"
    description = (
        "Prometheus cannot scrape the demandmon worker {{ $labels.instance }}: events may "
        "not be reaching Redis, so every figure can freeze."
    )
    summary = "demandmon worker down"
    setting = th.alerts.worker_down
    return alert_rule(th, n.ALERT_WORKER_DOWN, setting, expr, summary, description)


def exporter_down(th: Thresholds) -> Rule:
    # absent() as well: an exporter that was never scraped has no `up` series to be 0.
    up = f"up{{job={quote(n.JOB_EXPORTER)}}}"
    expr = f"{up} == 0\nor\nabsent({up})"
    description = (
        f"Prometheus has no successful scrape of job {n.JOB_EXPORTER}"
        "{{ with $labels.instance }} (instance {{ . }}){{ end }}: demand figures, "
        "dashboards and per-BCU alerts are blind."
    )
    summary = "demandmon exporter down or not scraped"
    setting = th.alerts.exporter_down
    return alert_rule(th, n.ALERT_EXPORTER_DOWN, setting, expr, summary, description)


def pipeline_alert_rules(th: Thresholds) -> list[Rule]:
    return [feed_stale(th), dead_letter(th), worker_down(th), exporter_down(th)]
