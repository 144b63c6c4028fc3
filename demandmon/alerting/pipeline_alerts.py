"""Pipeline alert rules: the feed, the dead-letter topic, the two scrape targets and the
worker's per-partition progress.

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


# The runbook procedure the stall alert points to, besides its own section.
STUCK_PARTITION_ANCHOR = "find-and-clear-a-stuck-partition"


def partition_stalled(th: Thresholds) -> Rule:
    # Lag alone is not a fault: a replay or a catch-up after downtime runs with a large
    # backlog while applying fast. Progress is the applied offset moving; the end offset
    # is refreshed independently of applying, so lag stays up (and grows with new events)
    # while applying is stuck. `and` matches on every label (job, instance, partition):
    # both series come from the same worker, and a revoked partition's series go with it.
    window = th.pipeline.partition_stall_window
    expr = (
        "demand_worker_partition_lag > 0\n"
        "and\n"
        f"changes(demand_worker_partition_applied_offset[{window}]) == 0"
    )
    description = (
        "Partition {{ $labels.partition }} on worker {{ $labels.instance }} has "
        '{{ $value | printf "%.0f" }} messages waiting and has applied none for '
        f"{window}: the incidents keyed to that partition (in every BCU) are not reaching "
        "Redis, so figures are partly frozen. Find and clear it: "
        f"{th.runbook_base_url}#{STUCK_PARTITION_ANCHOR}"
    )
    summary = "Partition {{ $labels.partition }} stalled on {{ $labels.instance }}"
    setting = th.alerts.partition_stalled
    return alert_rule(th, n.ALERT_PARTITION_STALLED, setting, expr, summary, description)


def _counter_rose(counter: str, window: str) -> str:
    """The counter grew within the window, or its series is new (none `window` ago) and
    above zero: increase() cannot see the first increment of a series created by it (a
    labelled counter) or first scraped after it (a worker that rewound at start-up)."""
    return (
        f"increase({counter}[{window}]) > 0\nor\n({counter} > 0 unless {counter} offset {window})"
    )


def dead_letter_lost(th: Thresholds) -> Rule:
    window = th.pipeline.dead_letter_lost_window
    expr = _counter_rose("demand_worker_deadletter_failures_total", window)
    description = (
        "Worker {{ $labels.instance }} gave up on dead letters (reason {{ $labels.reason }}) "
        f"in the last {window}: they did not reach the dead-letter topic within the retry "
        "deadline, so those rejected records are lost. The events still count as rejected "
        "and the figures are right; the original messages stay in the events topic until "
        "its retention ends."
    )
    summary = "Dead letters lost on {{ $labels.instance }}"
    setting = th.alerts.dead_letter_lost
    return alert_rule(th, n.ALERT_DEAD_LETTER_LOST, setting, expr, summary, description)


def redis_rolled_back(th: Thresholds) -> Rule:
    window = th.pipeline.redis_rewind_window
    expr = _counter_rose("demand_worker_rewinds_total", window)
    description = (
        "Worker {{ $labels.instance }} found Redis holding older state than it had applied "
        f"and rewound in the last {window}: Redis lost writes (restored from an older copy, "
        "or failed over to a lagging replica). The lost events were re-applied exactly, so "
        "figures are right; investigate Redis durability."
    )
    summary = "Redis lost writes; {{ $labels.instance }} re-applied them"
    setting = th.alerts.redis_rolled_back
    return alert_rule(th, n.ALERT_REDIS_ROLLED_BACK, setting, expr, summary, description)


def pipeline_alert_rules(th: Thresholds) -> list[Rule]:
    return [
        feed_stale(th),
        dead_letter(th),
        worker_down(th),
        exporter_down(th),
        partition_stalled(th),
        dead_letter_lost(th),
        redis_rolled_back(th),
    ]
