"""`demandmon backfill`: a historical event stream turned into Prometheus history.

The events go through the worker's own planning and apply script into scratch Redis
state, the state is read at every step of event time as the exporter reads it, and the
exporter's own families are written as OpenMetrics with timestamps, which promtool turns
into TSDB blocks (docs/runbook.md, "Backfilling last year")."""
