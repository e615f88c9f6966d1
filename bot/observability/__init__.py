"""Logs, Prometheus metrics, the telemetry interface components report to, startup warnings."""
