"""Export spans with the OpenTelemetry SDK: to ``RUN_DIR/traces.jsonl``, and to OTLP when configured.

Only the supervisor imports this module (agents never load the SDK). The
file exporter writes one JSON object per span, the ``swarm trace --json``
shape. The OTLP/HTTP exporter is added when ``OTEL_EXPORTER_OTLP_ENDPOINT``
(or the traces-only ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set. Both sit
behind the SDK's batch processor: the supervisor's loop (which agents wait
on for their step verdicts) only enqueues; the file is written at least
every half second and on shutdown, and a slow collector never holds the loop.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any, Mapping, Sequence

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, TraceFlags

from orchestrator.tracing.store import TRACE_FILE
from swarm_core.tracing import Span

AGENT_ATTR = "swarm.agent.id"
_SCOPE = InstrumentationScope("swarm")
_OTLP_VARS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
FILE_DELAY_MS = 500  # the file lags the run by at most this (the dashboard's waterfall reads it)


class JsonLinesExporter(SpanExporter):
    """Appends each span as one JSON line: ``{trace_id, span_id, parent_span_id, name, agent, ...}``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - lives with the exporter

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = "".join(json.dumps(_as_dict(s), ensure_ascii=False, default=str) + "\n" for s in spans)
        try:
            with self._lock:
                self._fh.write(lines)
                self._fh.flush()
        except (OSError, ValueError):
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        with self._lock:
            self._fh.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _as_dict(span: ReadableSpan) -> dict[str, Any]:
    ctx = span.context
    attrs = dict(span.attributes or {})
    return {
        "trace_id": format(ctx.trace_id, "032x") if ctx else None,
        "span_id": format(ctx.span_id, "016x") if ctx else None,
        "parent_span_id": format(span.parent.span_id, "016x") if span.parent else None,
        "name": span.name,
        "agent": attrs.get(AGENT_ATTR, ""),
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "attributes": attrs,
    }


def otlp_endpoint(env: Mapping[str, str] | None = None) -> str | None:
    """The OTLP endpoint the standard variables configure, or None (then no OTLP export)."""
    env = os.environ if env is None else env
    for var in _OTLP_VARS:
        if env.get(var, "").strip():
            return env[var].strip()
    return None


def exporters(run_dir: Path, env: Mapping[str, str] | None = None) -> list[tuple[str, SpanExporter]]:
    """``[("file", ...), ("otlp", ...)?]``: the file always, OTLP/HTTP when its variable is set."""
    out: list[tuple[str, SpanExporter]] = [("file", JsonLinesExporter(Path(run_dir) / TRACE_FILE))]
    if otlp_endpoint(env) is not None:
        # the exporter reads the standard variables itself (endpoint, headers, timeout)
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        out.append(("otlp", OTLPSpanExporter()))
    return out


class TraceExport:
    """The swarm's exporter: SDK spans from span records, through the configured processors."""

    def __init__(self, run_dir: Path, swarm_name: str, env: Mapping[str, str] | None = None) -> None:
        self.resource = Resource.create({"service.name": "swarm", "swarm.name": swarm_name})
        self.processors: list[SpanProcessor] = []
        for kind, exporter in exporters(run_dir, env):
            delay = {"schedule_delay_millis": FILE_DELAY_MS} if kind == "file" else {}
            self.processors.append(BatchSpanProcessor(exporter, **delay))

    def export(self, spans: Sequence[Span]) -> None:
        """Hand finished spans to every processor."""
        for span in spans:
            readable = self._readable(span)
            for proc in self.processors:
                proc.on_end(readable)

    def _readable(self, span: Span) -> ReadableSpan:
        ctx = SpanContext(int(span.trace_id, 16), int(span.span_id, 16), is_remote=False,
                          trace_flags=TraceFlags(TraceFlags.SAMPLED))
        parent = None
        if span.parent_span_id:
            parent = SpanContext(int(span.trace_id, 16), int(span.parent_span_id, 16), is_remote=True,
                                 trace_flags=TraceFlags(TraceFlags.SAMPLED))
        attrs = {**span.attributes, AGENT_ATTR: span.agent}
        return ReadableSpan(span.name, context=ctx, parent=parent, resource=self.resource,
                            attributes=attrs, start_time=span.start_ns, end_time=span.end_ns,
                            instrumentation_scope=_SCOPE)

    def shutdown(self) -> None:
        """Flush and close every exporter (bounded by the SDK's own timeouts)."""
        for proc in self.processors:
            proc.shutdown()
