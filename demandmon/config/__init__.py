"""`demandmon config generate`: every generated file (alert rules, Alertmanager config,
dashboards) written from deploy/thresholds.yaml, above the generators it assembles."""
