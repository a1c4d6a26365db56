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


APPROVALS = {"safety": {"approve": ["write_to_file"], "approval_timeout_seconds": 30}}


@pytest.fixture
def traced_approvals(tmp_path):
    tracing = SupervisorTracing.for_run(tmp_path, "t", NullLog(), on=True)
    rig = SupervisorRig(tmp_path, tracing=tracing, extra=APPROVALS, limits={"max_children": 5})
    yield rig, tracing, tmp_path
    rig.close()


def _held_step(rig, agent, step_tp, n=1):
    verdict = rig.send(agent, m.StepReport(agent, n, "write_to_file", '{"file": "a"}', "I write"),
                       traceparent=step_tp)
    assert verdict.verdict == m.StepVerdict.HOLD
    return verdict.request_id


def test_an_approval_is_a_span_under_the_held_step_with_its_decision(traced_approvals):
    """Held then denied by the operator: one approval span under the step span, with decision, by, reason."""
    rig, tracing, path = traced_approvals
    rig.root()
    rig.start("manager", "w")
    trace_id, _ = parse_traceparent(rig.spawner.specs[-1].traceparent)
    rid = _held_step(rig, "w", format_traceparent(trace_id, "5e" * 8))
    rig.send("cli-1", m.Decide(rid, False, "not there"))
    span = spans_of(tracing, path)[f"approval {rid}"]
    assert span["parent_span_id"] == "5e" * 8 and span["trace_id"] == trace_id and span["agent"] == "w"
    attrs = span["attributes"]
    assert (attrs["swarm.approval.decision"], attrs["swarm.approval.by"], attrs["swarm.approval.text"]) == \
        ("denied", "operator", "not there")
    assert attrs["swarm.approval.command"] == "write_to_file" and attrs["swarm.approval.kind"] == "command"
    assert span["end_ns"] >= span["start_ns"]


def test_approval_spans_of_approved_timed_out_and_cancelled_requests(traced_approvals):
    """Approved, denied by the timeout, cancelled by a kill: each request's span ends with what decided it."""
    rig, tracing, path = traced_approvals
    rig.root()
    for name in ("a", "b", "c"):
        rig.start("manager", name)
    trace_id, _ = parse_traceparent(rig.spawner.specs[-1].traceparent)
    ids = {name: _held_step(rig, name, format_traceparent(trace_id, f"{i + 1:016x}"))
           for i, name in enumerate(("a", "b", "c"))}
    rig.send("cli-1", m.Decide(ids["a"], True, "go"))
    rig.parts.desk.refuse(ids["b"], "timeout")
    rig.send("cli-1", m.DeleteAgent("c", reason="operator"))
    assert sorted(tracing.held_requests()) == [ids["c"]]  # the table cancelled it: closed at the next tick
    rig.reconciler.tick()
    assert tracing.held_requests() == []
    spans = spans_of(tracing, path)
    got = {name: (spans[f"approval {rid}"]["attributes"]["swarm.approval.decision"],
                  spans[f"approval {rid}"]["attributes"]["swarm.approval.by"]) for name, rid in ids.items()}
    assert got == {"a": ("approved", "operator"), "b": ("denied", "timeout"),
                   "c": ("cancelled", "supervisor")}
