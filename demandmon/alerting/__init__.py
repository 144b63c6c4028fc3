"""Alerting as code: thresholds config -> Prometheus rules and Alertmanager config."""
