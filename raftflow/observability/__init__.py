"""What a node tells its operators beyond its API: structured log lines (`json_logs`) and,
when configured, OpenTelemetry traces (`tracing`). Nothing here is imported by the shard core;
with the defaults (text logs, no exporter) nothing here runs per request."""
