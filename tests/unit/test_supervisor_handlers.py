"""The supervisor's handlers and reconcile tick over its real parts, with a fake spawner, clock and bus.

No process, no socket: a spawned agent is a pid the fake signaller sees
alive; messages are played to the handlers as if an agent, the gateway or
an operator sent them.
"""

from __future__ import annotations

import signal

import pytest

from bus.client import DEFERRED
from bus.protocol import Header, Kind
from orchestrator.supervisor.gate import Gate
from orchestrator.supervisor.guards.flood import Flood
from orchestrator.supervisor.reaper import Rung
from orchestrator.supervisor.spawner import SpawnError
from swarm_core import messages as m
from swarm_core.errors import NotFound, PolicyDenied
from swarm_core.status import Status
from tests.supervisor_harness import SupervisorRig

pytestmark = pytest.mark.timeout(20)

KILL = int(signal.SIGKILL)


@pytest.fixture
def rig(tmp_path):
    r = SupervisorRig(tmp_path)
    yield r
    r.close()


def test_start_agent_spawns_and_answers_when_ready(rig):
    """A start_agent within the limits spawns at once and is answered (id, depth, pid) on agent_ready."""
    rig.root()
    assert rig.send("manager", m.StartAgent("w", "do it", role="worker")) is DEFERRED
    assert rig.status("w") == Status.STARTING and rig.client.replies == []
    spec = rig.spawner.specs[-1]
    assert (spec.agent_id, spec.parent, spec.role_name, spec.task) == ("w", "manager", "worker", "do it")
    rig.send("w", m.AgentReady("w", 1), Kind.EVENT)
    (request, reply), = rig.client.replies
    assert request.body.name == "w" and reply == m.AgentStarted("w", 1, rig.table.get("w").pid)
    assert rig.status("w") == Status.RUNNING


def test_spawn_policy_refuses_before_anything_is_forked(rig):
    """Past max_children (2) a start is refused with the reason, nothing spawned, the refusal recorded."""
    rig.root()
    rig.start("manager", "a")
    rig.start("manager", "b")
    spawned = len(rig.spawner.specs)
    with pytest.raises(PolicyDenied, match="max_children"):
        rig.send("manager", m.StartAgent("c", "more", role="worker"))
    assert len(rig.spawner.specs) == spawned and rig.table.get("c") is None
    assert [e["event"] for e in rig.table.events("manager")].count("spawn_denied") == 1


def test_a_failed_spawn_gets_exactly_one_error_reply(rig):
    """A spawn the zygote refuses raises once (the request's one error reply); no late "did not start"."""
    rig.root()
    rig.spawner.fail = "the zygote is not running"
    with pytest.raises(SpawnError, match="zygote"):
        rig.send("manager", m.StartAgent("w", "do it", role="worker"))
    assert rig.status("w") == Status.FAILED and "spawn failed" in rig.table.get("w").reason
    rig.clock.advance(60)
    rig.reconciler.tick()
    assert rig.client.errors == [] and rig.client.replies == []


def test_a_start_that_never_becomes_ready_fails_once(rig):
    """An agent not ready within the start timeout is killed and its requester told once."""
    rig.root()
    rig.send("manager", m.StartAgent("w", "do it", role="worker"))
    pid = rig.table.get("w").pid
    rig.clock.advance(16)
    rig.reconciler.tick()
    rig.reconciler.tick()
    (request, err), = rig.client.errors
    assert request.body.name == "w" and "did not start in time" in err.message
    assert rig.table.get("w").reason == "start_timeout" and rig.signaller.signals(pid) == [KILL]


def test_status_reports_set_running_or_waiting_but_never_undo_a_freeze(rig):
    """An agent's own status is recorded, except over frozen (decided by the operator or breaker)."""
    rig.root()
    rig.send("manager", m.AgentStatus("manager", "waiting", 3), Kind.EVENT)
    assert rig.status("manager") == Status.WAITING
    rig.send("cli-1", m.Freeze("manager", True, "operator"))
    rig.send("manager", m.AgentStatus("manager", "running", 4), Kind.EVENT)
    assert rig.status("manager") == Status.FROZEN


def test_usage_counts_throttles_and_stops_on_a_spent_budget(rig):
    """Gateway usage sets counters and throttled; its stop reason stops the agent; others' are ignored."""
    rig.root()
    w = rig.start("manager", "w")
    rig.send("gateway", m.Usage("w", 100, 2, 0.5, "throttled"), Kind.EVENT)
    got = rig.table.get("w")
    assert (got.tokens, got.requests, got.status) == (100, 2, Status.THROTTLED)
    with pytest.raises(PolicyDenied, match="usage from the agent w refused"):  # not the gateway
        rig.send("w", m.Usage("w", 10**6, 99, 9.0, "", "budget_exhausted"), Kind.EVENT)
    assert rig.table.get("w").tokens == 100
    rig.send("gateway", m.Usage("w", 150, 3, 0.6, "running", "budget_exhausted"), Kind.EVENT)
    got = rig.table.get("w")
    assert (got.tokens, got.status, got.reason) == (150, Status.KILLED, "budget_exhausted")
    assert rig.client.to("w", m.Stop) == [m.Stop("budget_exhausted")] and rig.reaper.rung(w.pid) is Rung.STOP
    rig.send("gateway", m.Usage("w", 180, 4, 0.7), Kind.EVENT)  # late usage of an ended agent still counts
    assert rig.table.get("w").tokens == 180


def test_breaker_report_freezes_the_agent_with_the_words(rig):
    """The gateway's breaker report marks the agent frozen, naming the words."""
    rig.root()
    rig.start("manager", "w")
    rig.send("gateway", m.BreakerTripped("w", ["FBI"], 3), Kind.EVENT)
    got = rig.table.get("w")
    assert got.status == Status.FROZEN and "FBI" in got.reason


def test_step_verdicts_run_warn_and_stop_on_a_loop(rig):
    """Each step is answered: run, then a warning at the 3rd repeat, then stop (loop) before the 4th runs."""
    rig.root()
    w = rig.start("manager", "w")
    verdicts = [rig.send("w", m.StepReport("w", n, "read_file", '{"file": "a"}')) for n in (1, 2, 3, 4)]
    assert [v.verdict for v in verdicts] == ["run", "run", "warn", "stop"]
    assert "same arguments" in verdicts[2].message and verdicts[3].message == "loop"
    got = rig.table.get("w")
    assert (got.status, got.reason, got.steps) == (Status.KILLED, "loop", 3)
    assert rig.client.to("w", m.Stop) == [m.Stop("loop")] and rig.reaper.rung(w.pid) is Rung.STOP
    assert any("w was stopped: loop" in t for t in rig.inbox("manager"))
    assert rig.send("w", m.StepReport("w", 5, "read_file", "{}")).verdict == "stop"  # ended: always stop


def test_max_steps_stop_leaves_the_count_at_the_limit(rig):
    """Steps up to max_steps (5) run; the 6th report is a stop and the step count stays 5."""
    rig.root()
    rig.start("manager", "w")
    verdicts = [rig.send("w", m.StepReport("w", n, "read_file", f'{{"file": "{chr(96 + n)}"}}')).verdict
                for n in range(1, 7)]
    assert verdicts == ["run"] * 5 + ["stop"]
    got = rig.table.get("w")
    assert (got.status, got.reason, got.steps) == (Status.KILLED, "max_steps", 5)


def test_a_step_report_about_another_agent_is_refused(rig):
    """An agent may report only its own steps."""
    rig.root()
    rig.start("manager", "w")
    with pytest.raises(PolicyDenied, match="acts only for itself"):
        rig.send("w", m.StepReport("manager", 1, "read_file"))


def test_done_tells_the_parent_and_stops_the_children(rig):
    """A finished agent's result reaches its parent's inbox; its own sub-agents are stopped (parent_done)."""
    rig.root()
    rig.start("manager", "w")
    rig.start("w", "sub")
    rig.send("w", m.AgentDone("w", "all written"))
    assert rig.status("w") == Status.DONE and "w" in rig.table.blocked
    assert "w finished: all written" in rig.inbox("manager")
    sub = rig.table.get("sub")
    assert (sub.status, sub.reason) == (Status.KILLED, "parent_done")
    rig.send("manager", m.AgentDone("manager", "the end"))
    assert rig.table.meta("result") == "the end" and rig.table.meta("root_status") == "done"


def test_crash_is_restarted_per_policy_then_stays_crashed(rig):
    """A crashed on-crash worker restarts (new pid) up to max_restarts (2), then stays crashed."""
    rig.root()
    w = rig.start("manager", "w")
    pids = [w.pid]
    for n in range(2):
        rig.reconciler.on_exit(pids[-1], -9)
        got = rig.table.get("w")
        assert got.status == Status.STARTING and got.restarts == n + 1 and got.pid not in pids
        pids.append(got.pid)
        rig.send("w", m.AgentReady("w", 1), Kind.EVENT)
    rig.reconciler.on_exit(pids[-1], -9)
    got = rig.table.get("w")
    assert (got.status, got.reason) == (Status.CRASHED, "SIGKILL (killed from outside or by an rlimit)")
    assert "agent w crashed 3 times; it stays crashed" in rig.inbox("manager")
    assert any("crashed: SIGKILL" in t for t in rig.inbox("manager"))


def test_a_hung_agent_whose_slot_was_taken_is_not_restarted_past_max_agents(tmp_path):
    """A hung on-crash agent is ended at once but reaped later; if its slot was taken meanwhile it stays crashed, parent told."""
    from bus import messages as bm

    rig = SupervisorRig(tmp_path, limits={"max_agents": 3})
    try:
        rig.root()
        w = rig.start("manager", "w")
        rig.start("manager", "v")
        rig.reconciler.on_peer_event(bm.PeerEvent("left", "w", "dead"))  # hung: crashed, SIGKILL sent
        rig.start("v", "u")  # its slot is free until the exit is reaped
        rig.reconciler.on_exit(w.pid, -9)
        got = rig.table.get("w")
        assert got.status == Status.CRASHED and got.restarts == 0 and len(rig.table.live()) == 3
        assert "agent w crashed and was not restarted: max_agents 3 reached" in rig.inbox("manager")
        assert [e["event"] for e in rig.table.events("w")].count("restart_refused") == 1
    finally:
        rig.close()


def test_a_stopped_agent_exiting_is_not_a_crash(rig):
    """The exit of an agent we stopped keeps its status and reason; nothing is restarted."""
    rig.root()
    w = rig.start("manager", "w")
    rig.send("cli-1", m.DeleteAgent("w", reason="operator"))
    rig.reconciler.on_exit(w.pid, -15)
    got = rig.table.get("w")
    assert (got.status, got.reason, got.restarts) == (Status.KILLED, "operator", 0)
    assert rig.reaper.pending() == []


def test_delete_stops_a_subtree_and_only_ones_own(rig):
    """The operator deletes any subtree (children first, parent told); an agent only its own sub-agents."""
    rig.root()
    rig.start("manager", "a")
    rig.start("a", "b")
    rig.start("manager", "c")
    with pytest.raises(PolicyDenied, match="not one of your sub-agents"):
        rig.send("c", m.DeleteAgent("a"))
    with pytest.raises(NotFound):
        rig.send("cli-1", m.DeleteAgent("nobody"))
    reply = rig.send("cli-1", m.DeleteAgent("a", reason="operator", hard=True))
    assert reply.info == {"stopped": 2}
    assert [rig.status(x) for x in "abc"] == [Status.KILLED, Status.KILLED, Status.RUNNING]
    assert all(rig.signaller.signals(rig.table.get(x).pid) == [KILL] for x in ("a", "b"))
    assert any("agent a was stopped: operator (with 1 sub-agents)" in t for t in rig.inbox("manager"))


def test_kill_all_is_for_operators_only(rig):
    """An agent may not kill every agent; the operator may (hard)."""
    rig.root()
    rig.start("manager", "w")
    with pytest.raises(PolicyDenied):
        rig.send("w", m.KillAll("mine"))
    assert rig.send("cli-1", m.KillAll("operator")).info == {"stopped": 2}
    assert {r.status for r in rig.table.all()} == {Status.KILLED}


def test_freeze_and_thaw_every_agent(rig):
    """Freeze all: every live agent frozen and the gateway told; thaw: back to running."""
    rig.root()
    rig.start("manager", "w")
    with pytest.raises(PolicyDenied):
        rig.send("w", m.Freeze("", True, "agent"))
    assert rig.send("cli-1", m.Freeze("", True, "operator")).info == {"agents": 2}
    assert {r.status for r in rig.table.all()} == {Status.FROZEN}
    assert rig.client.to("gateway", m.Freeze) == [m.Freeze("", True, "operator")]
    rig.send("cli-1", m.Freeze("", False, "operator"))
    assert {r.status for r in rig.table.all()} == {Status.RUNNING}


def test_stop_file_on_a_tick_kills_everything(rig):
    """With RUN_DIR/STOP present, the next tick kills every agent (stop_file), hard."""
    rig.root()
    rig.start("manager", "w")
    (rig.run_dir / "STOP").touch()
    rig.reconciler.tick()
    assert {(r.status, r.reason) for r in rig.table.all()} == {(Status.KILLED, "stop_file")}
    assert all(rig.signaller.signals(r.pid) == [KILL] for r in rig.table.all())


def test_wall_time_and_the_ladder_on_ticks(rig):
    """Past max_wall_seconds an agent is stopped; later ticks climb its ladder to SIGTERM, then SIGKILL."""
    rig.root()
    w = rig.start("manager", "w")
    rig.wall.advance(61)
    rig.clock.advance(1)
    rig.reconciler.tick()
    assert rig.table.get("w").reason == "max_wall_seconds" and rig.signaller.signals(w.pid) == []
    rig.clock.advance(2)
    rig.reconciler.tick()
    rig.clock.advance(2)
    rig.reconciler.tick()
    assert rig.signaller.signals(w.pid) == [int(signal.SIGTERM), KILL]


def test_dead_peer_is_hung_and_killed(rig):
    """An agent the broker declares dead is killed at once and recorded crashed (hung)."""
    rig.root()
    w = rig.start("manager", "w")
    from bus import messages as bm

    rig.reconciler.on_peer_event(bm.PeerEvent("left", "w", "dead"))
    got = rig.table.get("w")
    assert (got.status, got.reason) == (Status.CRASHED, "hung") and rig.signaller.signals(w.pid) == [KILL]


def test_hung_agent_is_restarted_per_its_policy(rig):
    """A hung on-crash worker, killed and reaped, is restarted under its id with a new pid."""
    rig.root()
    w = rig.start("manager", "w")
    from bus import messages as bm

    rig.reconciler.on_peer_event(bm.PeerEvent("left", "w", "dead"))
    rig.reconciler.on_exit(w.pid, -9)  # the zygote reaps the process the SIGKILL ended
    got = rig.table.get("w")
    assert got.status == Status.STARTING and got.restarts == 1 and got.pid not in (None, w.pid)
    assert "w" not in rig.table.blocked
    rig.send("w", m.AgentReady("w", 1), Kind.EVENT)
    assert rig.status("w") == Status.RUNNING


def test_hung_agent_of_a_never_role_stays_crashed(rig):
    """A hung agent whose role has no restart policy stays crashed (hung) after it is reaped."""
    rig.root()
    manager = rig.table.get("manager")
    from bus import messages as bm

    rig.reconciler.on_peer_event(bm.PeerEvent("left", "manager", "dead"))
    rig.reconciler.on_exit(manager.pid, -9)
    got = rig.table.get("manager")
    assert (got.status, got.reason, got.restarts) == (Status.CRASHED, "hung", 0)


def test_down_records_the_intent_only(rig):
    """Down asks the owner to shut down (the loop acts); nothing is stopped by the handler."""
    rig.root()
    rig.send("cli-1", m.Down("down"))
    assert rig.shutdowns == ["down"] and rig.status("manager") == Status.RUNNING


def header(src: str, kind: Kind = Kind.REQUEST, body: type = m.ListAgents, dst: str = "supervisor") -> Header:
    return Header(kind, body.TYPE, "id", "", src, dst, 0.0)


def test_gate_refuses_stopped_agents_and_floods_but_not_services(rig):
    """The broker gate drops a stopped agent's requests (not its replies) and throttles agents only."""
    rig.root()
    rig.start("manager", "w")
    flood = rig.parts.guards.find(Flood)
    gate = Gate(rig.table, flood.check, rig.clock)
    rig.send("cli-1", m.DeleteAgent("w"))
    assert "stopped" in gate(header("w"), "agent")
    assert gate(header("w", Kind.REPLY, m.AgentReply, "manager"), "agent") is None
    verdicts = [gate(header("manager"), "agent") for _ in range(1000)]
    assert verdicts[0] is None and "flooding" in verdicts[-1]
    usage = header("gateway", Kind.EVENT, m.Usage)
    for _ in range(1000):
        assert gate(usage, "gateway") is None and gate(header("cli-7"), "operator") is None


def test_gate_applies_the_authorization_table_by_credential_kind(rig):
    """The gate refuses what the table does not allow the sender's kind, whatever name it uses."""
    rig.root()
    rig.start("manager", "a")
    rig.start("manager", "b")
    gate = Gate(rig.table, lambda peer, now: None, rig.clock)
    assert "down from the agent manager refused" in gate(header("manager", body=m.Down), "agent")
    assert gate(header("cli-1", body=m.Down), "operator") is None
    assert "only the gateway" in gate(header("a", Kind.EVENT, m.Usage), "agent")
    assert "not in your subtree" in gate(header("a", body=m.AgentMessage, dst="b"), "agent")
    assert gate(header("manager", body=m.AgentMessage, dst="b"), "agent") is None
    unknown = Header(Kind.REQUEST, "nonsense", "id", "", "a", "supervisor", 0.0)
    assert "deny by default" in gate(unknown, "agent")
