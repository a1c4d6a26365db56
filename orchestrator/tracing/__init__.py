"""The swarm's traces: one exporter in the supervisor, readers for the CLI and the dashboard.

Spans are recorded as plain data everywhere (:mod:`swarm_core.tracing`);
:mod:`export` turns them into OpenTelemetry SDK spans and exports them to
``RUN_DIR/traces.jsonl`` always, and over OTLP/HTTP when
``OTEL_EXPORTER_OTLP_ENDPOINT`` is set; :mod:`store` reads the file back.
"""
