"""One OpenTelemetry trace per run, across processes: a three-level replay swarm, read back with swarm trace."""

from __future__ import annotations

import json

import pytest

from tests.system.conftest import SwarmRun, base_config, cmd, wait_until

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]


WAITS = 8  # a parent waits up to WAITS x idle_wait_seconds for its child's result before it completes


def _three_levels() -> dict:
    """manager -> lead -> helper; each parent waits (do_nothing) for its child, then completes."""
    wait = [cmd("do_nothing")] * WAITS
    return {
        "manager": [cmd("start_agent", name="lead", task="lead the work", role="worker"), *wait,
                    cmd("task_complete", reason="lead reported")],
        "lead": [cmd("start_agent", name="helper", task="help", role="worker"), *wait,
                 cmd("task_complete", reason="helper reported")],
        "helper": [cmd("write_to_file", file="h.txt", text="hi"), cmd("task_complete", reason="wrote h.txt")],
    }


def _ancestors(span: dict, by_id: dict[str, dict]) -> list[str]:
    out, parent = [], span.get("parent_span_id")
    while parent and parent in by_id and len(out) < 1000:
        out.append(parent)
        parent = by_id[parent].get("parent_span_id")
    return out


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """One finished three-level run (shared by this module's tests, torn down after them)."""
    run = SwarmRun(tmp_path_factory.mktemp("traces"), base_config(limits={"idle_wait_seconds": 3}),
                   _three_levels())
    try:
        run.up()
        agents = run.wait_for(lambda a: a.get("manager", {}).get("status") == "done", timeout=120,
                              what="manager done")
        assert {a: agents[a]["status"] for a in agents} == {"manager": "done", "lead": "done", "helper": "done"}
        run.cli("down", check=True)  # the supervisor flushes its exporter on the way down
        spans = json.loads(run.cli("trace", "--json", check=True).stdout)
        yield run, run.agents(), spans
    finally:
        run.teardown()


def test_three_level_swarm_is_one_trace_rooted_at_the_roots_start_agent(finished_run):
    """Every span of the run has the same trace id, and the root's start_agent span is the only root."""
    _, _, spans = finished_run
    assert len({s["trace_id"] for s in spans}) == 1
    roots = [s for s in spans if not s["parent_span_id"]]
    assert [(s["name"], s["agent"]) for s in roots] == [("start_agent manager", "manager")]
    by_id = {s["span_id"]: s for s in spans}
    assert all(roots[0]["span_id"] in _ancestors(s, by_id) for s in spans if s is not roots[0])
    for s in spans:
        assert set(s) == {"trace_id", "span_id", "parent_span_id", "name", "agent", "start_ns", "end_ns",
                          "attributes"} and s["end_ns"] >= s["start_ns"] > 0


def test_every_agent_has_step_model_and_tool_spans(finished_run):
    """Each agent has its start_agent, step, chat (GenAI attributes) and execute_tool spans."""
    _, agents, spans = finished_run
    for agent_id in agents:
        names = [s["name"] for s in spans if s["agent"] == agent_id]
        assert f"start_agent {agent_id}" in names, agent_id
        assert any(n.startswith("step ") for n in names) and any(n.startswith("chat ") for n in names), names
        assert "execute_tool task_complete" in names, names
    for s in spans:
        if s["name"].startswith("chat "):
            a = s["attributes"]
            assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.request.model"] and a["swarm.agent.id"] == s["agent"]


def test_each_sub_agent_descends_from_its_parents_start_agent_span(finished_run):
    """Every span of a sub-agent has its parent agent's start_agent span among its ancestors."""
    _, agents, spans = finished_run
    by_id = {s["span_id"]: s for s in spans}
    start = {s["agent"]: s["span_id"] for s in spans if s["name"] == f"start_agent {s['agent']}"}
    for agent_id, info in agents.items():
        if info["parent"] is None:
            continue
        mine = [s for s in spans if s["agent"] == agent_id]
        assert mine
        for s in mine:
            assert start[info["parent"]] in _ancestors(s, by_id), (agent_id, s["name"])
    # the spawn itself hangs under the parent's execute_tool start_agent span (context from the bus header)
    lead_start = by_id[start["lead"]]
    assert by_id[lead_start["parent_span_id"]]["name"] == "execute_tool start_agent"
    assert by_id[lead_start["parent_span_id"]]["agent"] == "manager"


def test_model_call_tokens_sum_to_what_ps_shows(finished_run):
    """Per agent, input + output tokens of its chat spans add up to the tokens swarm ps reports."""
    _, agents, spans = finished_run
    for agent_id, info in agents.items():
        total = sum(s["attributes"]["gen_ai.usage.input_tokens"] + s["attributes"]["gen_ai.usage.output_tokens"]
                    for s in spans if s["agent"] == agent_id and s["name"].startswith("chat "))
        assert total == info["tokens"] > 0, agent_id
        assert sum(1 for s in spans if s["agent"] == agent_id and s["name"].startswith("chat ")) == info["requests"]


def test_trace_of_one_agent_is_its_subtree(finished_run):
    """swarm trace lead --json gives lead's and helper's spans only, starting with lead's start_agent."""
    run, _, _ = finished_run
    spans = json.loads(run.cli("trace", "lead", "--json", check=True).stdout)
    assert spans[0]["name"] == "start_agent lead"
    assert {s["agent"] for s in spans} == {"lead", "helper"}
    text = run.cli("trace", "lead", check=True).stdout
    assert text.splitlines()[0].startswith("start_agent lead") and "  step 1" in text
    p = run.cli("trace", "nobody")
    assert p.returncode == 6 and "no spans of agent 'nobody'" in p.stderr and "Traceback" not in p.stderr


def test_each_approval_is_a_span_under_the_held_step_with_its_decision(swarm):
    """An approved and a denied request each leave an approval span, child of the agent's step span,
    carrying the decision, who decided and the note or reason, in the run's one trace."""
    cfg = base_config()
    cfg["agents"]["worker"]["approve"] = ["write_to_file"]
    work = {w: [cmd("write_to_file", file=f"{w}.txt", text="x"), cmd("task_complete", reason="done")]
            for w in ("ok", "no")}
    manager = [cmd("start_agent", name=w, task="write", role="worker") for w in work]
    idle = {**cmd("do_nothing"), "delay_s": 0.3}
    run = swarm(cfg, {"manager": {"responses": [*manager, idle], "repeat": True}, **work})
    run.up()

    def requests() -> dict[str, str]:
        items = json.loads(run.cli("approvals", "--json", check=True).stdout)
        return {r["agent"]: r["id"] for r in items} if len(items) == 2 else {}

    ids = wait_until(requests, 60, "both requests", step=0.1)
    run.cli("approve", ids["ok"], "--note", "fine", check=True)
    run.cli("deny", ids["no"], "--reason", "not now", check=True)
    run.wait_for(lambda a: a["ok"]["status"] == "done" and a["no"]["status"] == "done", what="both done")
    run.cli("down", check=True)
    spans = json.loads(run.cli("trace", "--json", check=True).stdout)
    by_id = {s["span_id"]: s for s in spans}
    assert len({s["trace_id"] for s in spans}) == 1
    for agent, decision, text in (("ok", "approved", "fine"), ("no", "denied", "not now")):
        (span,) = [s for s in spans if s["name"] == f"approval {ids[agent]}"]
        parent = by_id[span["parent_span_id"]]
        assert parent["name"].startswith("step ") and parent["agent"] == agent == span["agent"]
        assert parent["start_ns"] <= span["start_ns"] <= span["end_ns"] <= parent["end_ns"]
        attrs = span["attributes"]
        got = (attrs["swarm.approval.decision"], attrs["swarm.approval.by"], attrs["swarm.approval.text"])
        assert got == (decision, "operator", text)
