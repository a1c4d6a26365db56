"""The supervisor's exporter: the JSON-lines file, OTLP over HTTP from the standard variable, reading back."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from orchestrator.supervisor.tracing import SupervisorTracing
from orchestrator.tracing import export, store
from swarm_core.tracing import CURRENT, Span, format_traceparent

pytestmark = pytest.mark.timeout(60)


class NullLog:
    def __getattr__(self, name):
        return lambda *a, **k: None


def span(name, agent, parent="", span_id="cd" * 8, start=10, end=20, **attrs):
    s = Span("ab" * 16, span_id, parent, name, agent, start, end)
    s.set(**attrs)
    return s


def test_file_exporter_writes_the_trace_json_shape(tmp_path):
    """Exported spans land in RUN_DIR/traces.jsonl as {trace_id, span_id, parent_span_id, name, agent, ...}."""
    ex = export.TraceExport(tmp_path, "t", env={})
    ex.export([span("step 1", "a", parent="ef" * 8, **{"swarm.step": 1})])
    ex.shutdown()
    (line,) = (tmp_path / store.TRACE_FILE).read_text().splitlines()
    got = json.loads(line)
    assert set(got) == {"trace_id", "span_id", "parent_span_id", "name", "agent", "start_ns", "end_ns", "attributes"}
    assert (got["trace_id"], got["span_id"], got["parent_span_id"]) == ("ab" * 16, "cd" * 8, "ef" * 8)
    assert (got["name"], got["agent"], got["start_ns"], got["end_ns"]) == ("step 1", "a", 10, 20)
    assert got["attributes"]["swarm.step"] == 1 and got["attributes"]["swarm.agent.id"] == "a"


def test_otlp_exporter_only_when_the_standard_variable_is_set(tmp_path):
    """No OTEL_EXPORTER_OTLP_ENDPOINT: the file alone; set: an OTLP/HTTP exporter as well."""
    assert [k for k, _ in export.exporters(tmp_path, env={})] == ["file"]
    assert export.otlp_endpoint({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}) == "http://127.0.0.1:4318"
    kinds = [k for k, _ in export.exporters(tmp_path, env={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"})]
    assert kinds == ["file", "otlp"]


class _Collector(BaseHTTPRequestHandler):
    """A loopback OTLP/HTTP receiver that keeps what it is sent."""

    received: list[tuple[str, str, bytes]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.received.append((self.path, self.headers.get("Content-Type", ""), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_otlp_export_reaches_a_collector_on_loopback(tmp_path, monkeypatch):
    """With the variable pointing at a local collector, the spans arrive there as OTLP protobuf."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    _Collector.received = []
    server = HTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
        ex = export.TraceExport(tmp_path, "t")
        ex.export([span("chat m", "a", **{"gen_ai.usage.input_tokens": 7})])
        ex.shutdown()  # flushes the batch processor
    finally:
        server.shutdown()
        server.server_close()
    (path, ctype, body), = _Collector.received
    assert path == "/v1/traces" and ctype == "application/x-protobuf"
    req = ExportTraceServiceRequest.FromString(body)
    (got,) = [s for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert got.name == "chat m" and got.trace_id.hex() == "ab" * 16
    assert {a.key: a.value.int_value for a in got.attributes}["gen_ai.usage.input_tokens"] == 7


def test_supervisor_tracing_links_spawns_and_controls_into_one_trace(tmp_path):
    """The root's start_agent is the trace root; a child spawned in a request's span and a kill join it."""
    tr = SupervisorTracing.for_run(tmp_path, "t", NullLog(), on=True)
    root_tp = tr.spawn_started("root", None)
    tr.spawn_ended("root", "ready")
    token = CURRENT.set(format_traceparent(root_tp[3:35], "ef" * 8))  # the root's execute_tool span
    try:
        tr.spawn_started("kid", "root")
    finally:
        CURRENT.reset(token)
    tr.spawn_ended("kid", "ready")
    tr.control("kill", "kid", **{"swarm.reason": "operator"})
    tr.close()
    spans = {s["name"]: s for s in store.read_spans(tmp_path)}
    assert spans["start_agent root"]["parent_span_id"] is None
    assert len({s["trace_id"] for s in spans.values()}) == 1
    assert spans["start_agent kid"]["parent_span_id"] == "ef" * 8
    assert spans["kill kid"]["parent_span_id"] == spans["start_agent kid"]["span_id"]


def test_supervisor_tracing_drops_spans_an_agent_sends_about_another(tmp_path):
    """An agent's spans about itself are exported; about another agent, or malformed, are dropped and counted."""
    tr = SupervisorTracing.for_run(tmp_path, "t", NullLog(), on=True)
    tr.receive("a", [span("step 1", "a").to_wire(), span("step 1", "b", span_id="ee" * 8).to_wire(), ["junk"]])
    tr.receive("gateway", [span("chat m", "b", span_id="ff" * 8).to_wire()])
    tr.close()
    assert [(s["name"], s["agent"]) for s in store.read_spans(tmp_path)] == [("step 1", "a"), ("chat m", "b")]
    assert tr.rejected == 2


def test_subtree_and_usage_read_back_the_file(tmp_path):
    """subtree keeps what descends from an agent's start_agent span; usage sums model-call tokens per minute."""
    lines = [
        span("start_agent r", "r", span_id="01" * 8, start=1, end=2, **{"swarm.agent.id": "r"}),
        span("step 1", "r", parent="01" * 8, span_id="02" * 8, start=2, end=9),
        span("chat m", "r", parent="02" * 8, span_id="03" * 8, start=3, end=4, **{
            "gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 5, "gen_ai.usage.output_tokens": 2}),
        span("start_agent k", "k", parent="02" * 8, span_id="04" * 8, start=5, end=6),
        span("chat m", "k", parent="04" * 8, span_id="05" * 8, start=6, end=61 * 10**9, **{
            "gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 1, "gen_ai.usage.output_tokens": 1,
            "swarm.cost_usd": 0.5}),
    ]
    ex = export.TraceExport(tmp_path, "t", env={})
    ex.export(lines)
    ex.shutdown()
    spans = store.read_spans(tmp_path)
    assert [s["span_id"] for s in store.subtree(spans, "k")] == ["04" * 8, "05" * 8]
    assert len(store.subtree(spans, "r")) == 5
    chart = store.usage(spans)
    assert chart["bucket_s"] == 5 and len(chart["buckets"]) == 13  # 0 s .. 61 s, empty buckets kept
    first, last = chart["buckets"][0], chart["buckets"][-1]
    assert (first["t"], first["tokens"], first["tokens_per_minute"], first["calls"]) == (0, 7, 84.0, 1)
    assert (last["t"], last["tokens"], last["cost_usd"]) == (60, 2, 0.5)
    assert [b["tokens"] for b in store.usage(spans, "k")["buckets"]] == [2] + [0] * 11  # padded to 12


def test_usage_buckets_widen_for_long_runs():
    """Calls spread over two hours fold into at most 60 buckets of a wider width."""
    spans = [{"agent": "a", "end_ns": int(t * 1e9), "attributes": {
        "gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 1, "gen_ai.usage.output_tokens": 0}}
        for t in range(0, 7200, 100)]
    chart = store.usage(spans)
    assert chart["bucket_s"] == 300 and len(chart["buckets"]) <= 60
    assert sum(b["tokens"] for b in chart["buckets"]) == len(spans)
