"""Pipeline health: is the data on the other dashboards current and complete?

Lines drawn at the thresholds the pipeline alerts use, from deploy/thresholds.yaml.
Every query returns data once a worker runs (tests/integration/test_alerting_e2e.py runs
them all): partition series exist from assignment, and the labelled dead-letter failure
counter, created only by its first increment, falls back to 0.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import stat
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

from demandmon.alerting import names as n
from demandmon.alerting.promql import quote
from demandmon.alerting.thresholds import Thresholds
from demandmon.dashboards.common import PanelBuilder, new_dashboard, stat_panel, steps, trend_panel

UID = "demandmon-pipeline-health"
FILE = "grafana/dashboards/pipeline-health.json"

RATE = "[$__rate_interval]"
LATENCY = "demand_worker_event_latency_seconds_bucket"


def _up_panel() -> stat.Panel:
    jobs = f"{n.JOB_WORKER}|{n.JOB_EXPORTER}"
    up_down = dm.ValueMap(
        options={
            "0": dm.ValueMappingResult(text="DOWN", color="red", index=0),
            "1": dm.ValueMappingResult(text="UP", color="green", index=1),
        }
    )
    return (
        stat_panel(
            "Scrape targets",
            f"up{{job=~{quote(jobs)}}}",
            thresholds=steps((None, "red"), (1, "green")),
            legend="{{job}} {{instance}}",
            w=24,
        )
        .mappings([up_down])
        .text_mode(cm.BigValueTextMode.VALUE_AND_NAME)
    )


def _flow(th: Thresholds) -> list[PanelBuilder]:
    return [
        trend_panel(
            "Events applied per second",
            [(f"sum by (source) (rate(demand_events_applied_total{RATE}))", "{{source}}")],
            unit="ops",
        ),
        trend_panel(
            "Duplicate events ignored per second",
            [(f"sum by (source) (rate(demand_events_duplicate_total{RATE}))", "{{source}}")],
            unit="ops",
        ),
        trend_panel(
            "Dead-lettered events per second, by reason",
            [
                (
                    f"sum by (source, reason) (rate(demand_events_rejected_total{RATE}))",
                    "{{source}} {{reason}}",
                )
            ],
            unit="ops",
            threshold=th.pipeline.dead_letter_max_per_second,
            description="Dashed line: the dead-letter alert threshold, per source and reason.",
        ),
    ]


def _freshness(th: Thresholds) -> list[PanelBuilder]:
    watched = f"source=~{quote(th.sources.feed_stale)}"
    # source_kind: the worker labels latency by kind of source (live or replay).
    latency = f"sum by (le, source_kind) (rate({LATENCY}{RATE}))"
    return [
        trend_panel(
            "Feed age: since last batch and since latest event time",
            [
                (
                    "time() - max by (source) "
                    f"(demand_stream_last_processed_timestamp_seconds{{{watched}}})",
                    "{{source}} last batch",
                ),
                (
                    "time() - max by (source) "
                    f"(demand_stream_watermark_timestamp_seconds{{{watched}}})",
                    "{{source}} watermark",
                ),
            ],
            unit="s",
            threshold=th.pipeline.feed_stale_after_seconds,
            description=(
                "Only sources the stale-feed alert watches: a finished replay's "
                "watermark is old by design. Dashed line: the stale threshold."
            ),
        ),
        trend_panel(
            "Worker latency, Kafka message to state change",
            [
                (f"histogram_quantile(0.5, {latency})", "p50 {{source_kind}}"),
                (f"histogram_quantile(0.95, {latency})", "p95 {{source_kind}}"),
                (f"histogram_quantile(0.99, {latency})", "p99 {{source_kind}}"),
            ],
            unit="s",
        ),
        trend_panel(
            "Orphaned incidents per hour and exporter scrape time",
            [
                (
                    "sum by (source) (increase(demand_incidents_orphaned_total[1h]))",
                    "{{source}} orphaned / h",
                ),
                ("max(demand_exporter_scrape_duration_seconds)", "exporter scrape seconds"),
            ],
            description="Orphans: incidents whose `created` never arrived within 35 days.",
        ),
    ]


def _partitions(th: Thresholds) -> list[PanelBuilder]:
    window = th.pipeline.partition_stall_window
    return [
        trend_panel(
            "Consumer lag by partition",
            [
                (
                    "max by (instance, partition) (demand_worker_partition_lag)",
                    "p{{partition}} {{instance}}",
                )
            ],
            description=(
                "Messages in each partition of the events topic not yet applied to Redis. "
                "A backlog that is being applied is fine; lag with a flat line in the next "
                f"panel for {window} is a stall (runbook: Find and clear a stuck partition)."
            ),
        ),
        trend_panel(
            "Offsets applied per second, by partition",
            [
                (
                    "max by (instance, partition) "
                    f"(deriv(demand_worker_partition_applied_offset{RATE}))",
                    "p{{partition}} {{instance}}",
                )
            ],
            unit="ops",
            description=(
                "How fast each partition's applied offset moves. Zero while the partition "
                "has lag: stalled. Below zero: a rewind after Redis lost writes."
            ),
        ),
        stat_panel(
            "Dead letters lost",
            "sum(demand_worker_deadletter_failures_total) or vector(0)",
            thresholds=steps((None, "green"), (1, "orange")),
            description=(
                "Dead letters given up on since each worker started: rejected records that "
                "never reached the dead-letter topic (DemandmonDeadLetterLost)."
            ),
            h=8,
        ),
        stat_panel(
            "Redis rewinds",
            "sum(demand_worker_rewinds_total) or vector(0)",
            thresholds=steps((None, "green"), (1, "orange")),
            description=(
                "Partitions rewound since each worker started because Redis held older "
                "state than applied: Redis lost writes (DemandmonRedisRolledBack)."
            ),
            h=8,
        ),
    ]


def pipeline_health(th: Thresholds) -> db.Dashboard:
    dash = new_dashboard(
        UID,
        "Pipeline health",
        "Throughput, rejections, feed freshness, latency, partition progress and targets.",
    ).time("now-6h", "now")
    dash = dash.with_panel(_up_panel())
    dash = dash.with_row(db.Row("Flow"))
    for panel in _flow(th):
        dash = dash.with_panel(panel)
    dash = dash.with_row(db.Row("Freshness and latency"))
    for panel in _freshness(th):
        dash = dash.with_panel(panel)
    dash = dash.with_row(db.Row("Partitions"))
    for panel in _partitions(th):
        dash = dash.with_panel(panel)
    return dash
