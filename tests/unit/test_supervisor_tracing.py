"""The supervisor's spans over its real parts (fake spawner and bus): spawns, kills, freezes, others' spans."""

from __future__ import annotations

import pytest

from bus.protocol import Kind
from orchestrator.supervisor.tracing import SupervisorTracing
from orchestrator.tracing.store import read_spans
from swarm_core import messages as m
from swarm_core.tracing import Span, format_traceparent, parse_traceparent
from tests.supervisor_harness import NullLog, SupervisorRig

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
def traced(tmp_path):
    tracing = SupervisorTracing.for_run(tmp_path, "t", NullLog(), on=True)
    rig = SupervisorRig(tmp_path, tracing=tracing)
    yield rig, tracing, tmp_path
    rig.close()


def spans_of(tracing, path):
    tracing.close()  # flushes the exporter
    return {s["name"]: s for s in read_spans(path)}


def test_each_agent_starts_inside_its_start_agent_span(traced):
    """The root's start_agent is the trace root and its spec carries it; a child's hangs under the request."""
    rig, tracing, path = traced
    rig.root()
    root_tp = rig.spawner.specs[-1].traceparent
    trace_id, _ = parse_traceparent(root_tp)
    tool_tp = format_traceparent(trace_id, "ef" * 8)  # the root's execute_tool start_agent span
    rig.send("manager", m.StartAgent("w", "do it", role="worker"), traceparent=tool_tp)
    rig.send("w", m.AgentReady("w", 1), Kind.EVENT)
    w_tp = rig.spawner.specs[-1].traceparent
    spans = spans_of(tracing, path)
    root, w = spans["start_agent manager"], spans["start_agent w"]
    assert root["parent_span_id"] is None and parse_traceparent(root_tp) == (root["trace_id"], root["span_id"])
    assert w["parent_span_id"] == "ef" * 8 and parse_traceparent(w_tp) == (trace_id, w["span_id"])
    assert w["attributes"]["swarm.outcome"] == "ready" and w["attributes"]["swarm.parent.id"] == "manager"


def test_operator_kill_and_freeze_join_the_run_trace(traced):
    """An operator's kill and freeze (no trace context) are spans under the target's start_agent span."""
    rig, tracing, path = traced
    rig.root()
    rig.start("manager", "w")
    rig.send("cli-1", m.Freeze("w", True, "operator"))
    rig.send("cli-1", m.DeleteAgent("w", reason="operator"))
    spans = spans_of(tracing, path)
    for name in ("freeze w", "kill w"):
        assert spans[name]["parent_span_id"] == spans["start_agent w"]["span_id"], name
    assert spans["kill w"]["attributes"]["swarm.reason"] == "operator"
    assert len({s["trace_id"] for s in spans.values()}) == 1


def test_spans_from_an_agent_about_another_are_dropped(traced):
    """TraceSpans are exported when an agent reports its own spans, dropped (and counted) otherwise."""
    rig, tracing, path = traced
    rig.root()
    mine = Span("ab" * 16, "01" * 8, "", "step 1", "manager", 5, 9)
    theirs = Span("ab" * 16, "02" * 8, "", "step 1", "w", 5, 9)
    rig.send("manager", m.TraceSpans([mine.to_wire(), theirs.to_wire()]), Kind.EVENT)
    spans = spans_of(tracing, path)
    assert spans["step 1"]["agent"] == "manager" and tracing.rejected == 1


def test_tracing_off_records_nothing(tmp_path):
    """With tracing off the spec's traceparent is empty and no trace file is written."""
    rig = SupervisorRig(tmp_path, tracing=SupervisorTracing.for_run(tmp_path, "t", NullLog(), on=False))
    try:
        rig.root()
        assert rig.spawner.specs[-1].traceparent == ""
        rig.send("cli-1", m.DeleteAgent("manager", reason="operator"))
    finally:
        rig.close()
    assert not (tmp_path / "traces.jsonl").exists()
