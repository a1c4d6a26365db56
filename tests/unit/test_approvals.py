"""The supervisor's approval desk with fake ports: held steps, long polls, decisions, timeouts, budgets."""

from __future__ import annotations

import pytest

from bus.client import DEFERRED
from bus.protocol import Kind
from orchestrator.supervisor.approvals import Kind as ReqKind
from orchestrator.supervisor.approvals import State
from orchestrator.supervisor.desk import POLL_SECONDS
from orchestrator.supervisor.guards.stopfile import STOP_FILE
from swarm_core import messages as m
from swarm_core.errors import OperatorError, PolicyDenied
from swarm_core.status import Status
from tests.supervisor_harness import SupervisorRig

EXTRA = {
    "agents": {
        "manager": {"role": "a manager", "commands": ["start_agent", "delete_file", "task_complete"],
                    "can_start": ["worker"], "approve": ["delete_file"], "budget": {"max_tokens": 10_000}},
        "worker": {"role": "a worker", "commands": ["start_agent", "write_to_file", "task_complete"],
                   "can_start": ["worker"], "budget": {"max_tokens": 4000, "max_cost_usd": 1.0}},
    },
    "safety": {"approve": ["write_to_file"], "approval_timeout_seconds": 30},
}


@pytest.fixture
def rig(tmp_path):
    """Supervisor parts around fakes, with commands that need approval and budgets."""
    r = SupervisorRig(tmp_path, extra=EXTRA)
    try:
        yield r
    finally:
        r.close()


def _step(rig, agent, command, n=1, args='{"file": "x.txt"}', speak="I delete it"):
    return rig.send(agent, m.StepReport(agent, n, command, args, speak))


def _held(rig, agent="manager", command="delete_file", n=1):
    verdict = _step(rig, agent, command, n)
    assert verdict.verdict == m.StepVerdict.HOLD and verdict.request_id
    return verdict.request_id


def _answers(rig):
    return [body for _, body in rig.client.replies if isinstance(body, m.ApprovalAnswer)]


def test_a_listed_command_is_held_and_recorded(rig):
    """A command under the role's approve is answered hold; the request has its command, args and thoughts."""
    rig.root()
    rid = _held(rig)
    (req,) = rig.table.approvals.pending()
    assert (req.id, req.agent, req.kind, req.command, req.args, req.thoughts) == \
        (rid, "manager", ReqKind.COMMAND, "delete_file", {"file": "x.txt"}, "I delete it")
    assert rig.status("manager") == Status.AWAITING_APPROVAL
    assert req.listing() == {"id": rid, "agent": "manager", "kind": "command", "command": "delete_file",
                             "args": {"file": "x.txt"}, "since": req.since, "thoughts": "I delete it"}
    assert _step(rig, "manager", "task_complete", 2).verdict == m.StepVerdict.RUN


def test_swarm_wide_approve_applies_to_every_role(rig):
    """safety.approve holds the worker's write_to_file too."""
    rig.root()
    rig.start("manager", "w")
    assert _step(rig, "w", "write_to_file").verdict == m.StepVerdict.HOLD


def test_a_poll_is_parked_answered_pending_then_the_approval_with_its_note(rig):
    """AwaitApproval waits; after POLL_SECONDS it is answered pending; an approval answers the next at once."""
    rig.root()
    rid = _held(rig)
    assert rig.send("manager", m.AwaitApproval(rid)) is DEFERRED
    rig.clock.advance(POLL_SECONDS + 0.1)
    rig.reconciler.tick()
    assert [a.state for a in _answers(rig)] == ["pending"]
    assert rig.send("manager", m.AwaitApproval(rid)) is DEFERRED
    ok = rig.send("cli-1", m.Decide(rid, True, "go ahead"))
    assert ok.info == {"request": rid, "agent": "manager", "approved": True}
    assert [(a.state, a.text) for a in _answers(rig)][-1] == ("approved", "go ahead")
    assert rig.status("manager") == Status.RUNNING
    assert rig.table.approvals.get(rid).state is State.APPROVED
    assert rig.send("manager", m.AwaitApproval(rid)) == m.ApprovalAnswer(rid, "approved", "go ahead")


def test_a_denial_answers_with_the_reason(rig):
    """swarm deny: the waiting agent is answered denied with the operator's reason."""
    rig.root()
    rid = _held(rig)
    rig.send("manager", m.AwaitApproval(rid))
    rig.send("cli-1", m.Decide(rid, False, "not that file"))
    assert (_answers(rig)[-1].state, _answers(rig)[-1].text) == ("denied", "not that file")
    assert rig.status("manager") == Status.RUNNING


def test_deciding_twice_or_an_unknown_request_is_refused_and_changes_nothing(rig):
    """Approving twice, denying after an approval, or an unknown id: OperatorError; the first decision stays."""
    rig.root()
    rid = _held(rig)
    rig.send("cli-1", m.Decide(rid, True))
    for body in (m.Decide(rid, True), m.Decide(rid, False, "late")):
        with pytest.raises(OperatorError, match=f"request {rid} was already approved"):
            rig.send("cli-1", body)
    with pytest.raises(OperatorError, match="no approval request 'req-99'"):
        rig.send("cli-1", m.Decide("req-99", True))
    assert rig.table.approvals.get(rid).state is State.APPROVED and rig.table.approvals.get(rid).text == ""


def test_a_retried_decision_gets_the_first_outcome(rig):
    """A decision retried under its retry id (its answer was lost) gets the first answer, not 'already decided'."""
    rig.root()
    rid = _held(rig)
    first = rig.send("cli-1", m.Decide(rid, True, "go ahead", "try-1"))
    again = rig.send("cli-1", m.Decide(rid, False, "changed my mind", "try-1"))
    assert again == first and first.info["approved"] is True
    assert rig.table.approvals.get(rid).state is State.APPROVED and rig.table.approvals.get(rid).text == "go ahead"
    with pytest.raises(OperatorError, match=f"request {rid} was already approved"):
        rig.send("cli-1", m.Decide(rid, False, "late", "try-2"))  # another decision is still refused


def test_only_an_operator_decides(rig):
    """An agent cannot approve its own (or any) request, nor set a budget, nor forge the gateway's report:
    the authorization table refuses each (by the sender's kind)."""
    rig.root()
    rid = _held(rig)
    with pytest.raises(PolicyDenied, match="only the operator approves or denies"):
        rig.send("manager", m.Decide(rid, True))
    with pytest.raises(PolicyDenied, match="only the operator sets budgets"):
        rig.send("manager", m.SetBudget("manager", 10**9))
    with pytest.raises(PolicyDenied, match="only the gateway reports a call held"):
        rig.send("manager", m.BudgetExhausted("manager", "manager", "forged"), Kind.EVENT)
    assert rig.table.approvals.get(rid).state is State.PENDING


def test_approving_a_request_of_a_killed_agent_is_refused(rig):
    """Killing a waiting agent cancels its request: approving it then says so and runs nothing."""
    rig.root()
    rig.start("manager", "w")
    rid = _held(rig, "w", "write_to_file")
    rig.send("cli-1", m.DeleteAgent("w", reason="operator"))
    assert rig.status("w") == Status.KILLED
    with pytest.raises(OperatorError, match=f"request {rid} was already cancelled: agent w is killed"):
        rig.send("cli-1", m.Decide(rid, True))
    assert rig.table.approvals.pending() == []


def test_a_request_nobody_decides_is_denied_with_reason_timeout(rig):
    """Past approval_timeout_seconds the timeout guard denies the request (reason timeout)."""
    rig.root()
    rid = _held(rig)
    rig.send("manager", m.AwaitApproval(rid))
    rig.wall.advance(29)
    rig.clock.advance(1.5)
    rig.reconciler.tick()
    assert rig.table.approvals.get(rid).state is State.PENDING
    rig.wall.advance(2)
    rig.clock.advance(1.5)
    rig.reconciler.tick()
    req = rig.table.approvals.get(rid)
    assert (req.state, req.text) == (State.DENIED, "timeout")
    assert (_answers(rig)[-1].state, _answers(rig)[-1].text) == ("denied", "timeout")


def test_freeze_and_thaw_of_a_waiting_agent_return_it_to_waiting(rig):
    """A waiting agent can be frozen; thawed, it awaits its approval again."""
    rig.root()
    _held(rig)
    rig.send("cli-1", m.Freeze("manager", True, "operator"))
    assert rig.status("manager") == Status.FROZEN
    rig.send("manager", m.AgentStatus("manager", "running", 1), Kind.EVENT)
    assert rig.status("manager") == Status.FROZEN
    rig.send("cli-1", m.Freeze("manager", False, "operator"))
    assert rig.status("manager") == Status.AWAITING_APPROVAL


def test_the_stop_file_kills_a_waiting_agent_and_cancels_its_request(rig):
    """touch STOP: a waiting agent is killed like any other; its request is cancelled."""
    rig.root()
    rid = _held(rig)
    (rig.run_dir / STOP_FILE).touch()
    rig.reconciler.tick()
    assert rig.status("manager") == Status.KILLED
    assert rig.table.approvals.get(rid).state is State.CANCELLED


def test_a_later_step_supersedes_a_request_left_pending(rig):
    """A held step that got no verdict is cancelled when the agent reports its next step."""
    rig.root()
    first = _held(rig, n=1)
    second = _held(rig, n=2)
    assert rig.table.approvals.get(first).state is State.CANCELLED
    assert [r.id for r in rig.table.approvals.pending()] == [second]


def test_a_loop_warning_travels_with_the_hold(rig):
    """When a hold and a warning come together, the warning's text is the hold verdict's message."""
    rig.root()
    for n in (1, 2):
        _held(rig, n=n)
    verdict = _step(rig, "manager", "delete_file", 3)
    assert verdict.verdict == m.StepVerdict.HOLD and "same arguments" in verdict.message


def test_a_new_supervisor_answers_the_poll_from_the_registry(rig, tmp_path):
    """After a restart (a new table on the same file) a decided request is answered and a pending one parked."""
    rig.root()
    decided, pending = _held(rig, n=1), None
    rig.send("cli-1", m.Decide(decided, False, "no"))
    pending = _held(rig, n=2)
    again = SupervisorRig(tmp_path, extra=EXTRA)  # the same run dir: the registry survives
    try:
        assert again.send("manager", m.AwaitApproval(decided)) == m.ApprovalAnswer(decided, "denied", "no")
        assert again.send("manager", m.AwaitApproval(pending)) is DEFERRED
        with pytest.raises(PolicyDenied):
            again.send("intruder", m.AwaitApproval(pending))
    finally:
        again.close()


# ------------------------------------------------------------------ budgets


def test_budget_exhausted_freezes_the_agent_and_asks_once(rig):
    """The gateway's BudgetExhausted: frozen with reason budget_exhausted and one budget request."""
    rig.root()
    rig.start("manager", "w")
    for _ in range(2):
        rig.send("gateway", m.BudgetExhausted("w", "manager", "max_tokens budget of 10000 cannot cover"),
                 Kind.EVENT)
    rec = rig.table.get("w")
    assert (rec.status, rec.reason) == (Status.FROZEN, "budget_exhausted")
    (req,) = rig.table.approvals.pending()
    assert (req.kind, req.agent, req.budget_of) == (ReqKind.BUDGET, "w", "manager")
    assert req.listing()["budget_of"] == "manager"
    with pytest.raises(PolicyDenied, match="only the gateway"):
        rig.send("intruder", m.BudgetExhausted("manager", "manager", "spoofed"), Kind.EVENT)
    assert rig.status("manager") == Status.RUNNING


def test_set_budget_raises_it_and_releases_every_agent_waiting_for_it(rig):
    """swarm budget on the manager: its budget changes (the gateway hears first) and frozen descendants thaw."""
    rig.root()
    rig.start("manager", "w")
    rig.start("w", "leaf")
    for agent in ("w", "leaf"):
        rig.send("gateway", m.BudgetExhausted(agent, "manager", "no room"), Kind.EVENT)
    sent_before = len(rig.client.sent)
    ok = rig.send("cli-1", m.SetBudget("manager", 50_000))
    assert sorted(ok.info["released"]) == ["leaf", "w"]
    rec = rig.table.get("manager")
    assert (rec.budget_tokens, rec.budget_override) == (50_000, True)
    to_gateway = [b for d, b in rig.client.sent[sent_before:] if d == "gateway"]
    assert to_gateway[0] == m.BudgetChanged("manager")
    assert {b.agent_id for b in to_gateway[1:] if isinstance(b, m.Freeze) and not b.frozen} == {"w", "leaf"}
    assert rig.status("w") == rig.status("leaf") == Status.RUNNING
    assert rig.table.approvals.pending() == []


def test_approving_a_budget_request_is_refused_and_denying_kills_the_agent(rig):
    """A budget request is not approved (raise the budget instead); denied, its agent is killed."""
    rig.root()
    rig.start("manager", "w")
    rig.send("gateway", m.BudgetExhausted("w", "w", "no room"), Kind.EVENT)
    (req,) = rig.table.approvals.pending()
    with pytest.raises(OperatorError, match="swarm budget w"):
        rig.send("cli-1", m.Decide(req.id, True))
    rig.send("cli-1", m.Decide(req.id, False, "enough"))
    rec = rig.table.get("w")
    assert (rec.status, rec.reason) == (Status.KILLED, "budget_exhausted")


@pytest.mark.parametrize("body, error", [
    (m.SetBudget("manager", -5), "positive"),
    (m.SetBudget("manager", 0, -1.0), "positive"),
    (m.SetBudget("manager"), "give a token budget"),
    (m.SetBudget("nobody", 100), "no agent 'nobody'"),
])
def test_bad_budgets_are_refused_and_change_nothing(rig, body, error):
    """Negative, missing or unknown: one clear OperatorError and the budget stays."""
    rig.root()
    with pytest.raises(OperatorError, match=error):
        rig.send("cli-1", body)
    rec = rig.table.get("manager")
    assert (rec.budget_tokens, rec.budget_override) == (10_000, False)


def test_a_budget_for_an_ended_agent_is_refused(rig):
    """swarm budget on a killed agent: refused, nothing recorded."""
    rig.root()
    rig.start("manager", "w")
    rig.send("cli-1", m.DeleteAgent("w", reason="operator"))
    with pytest.raises(OperatorError, match="agent w is killed"):
        rig.send("cli-1", m.SetBudget("w", 100))
    assert rig.table.get("w").budget_tokens == 4000


def test_set_budget_keeps_the_part_not_given(rig):
    """Setting only dollars keeps the token budget the agent had."""
    rig.root()
    rig.start("manager", "w")
    rig.send("cli-1", m.SetBudget("w", 0, 2.5))
    rec = rig.table.get("w")
    assert (rec.budget_tokens, rec.budget_usd) == (4000, 2.5)


def test_start_agent_takes_a_slice_of_what_is_left_and_refuses_more(rig):
    """A start_agent budget within what is left caps the child; more is refused before any spawn."""
    rig.root()
    rig.table.update("manager", tokens=7000)
    spawned = len(rig.spawner.specs)
    with pytest.raises(PolicyDenied, match=r"more than what is left of your budget \(3000 tokens\)"):
        rig.send("manager", m.StartAgent("w", "work", role="worker", budget=3001))
    assert len(rig.spawner.specs) == spawned and rig.table.get("w") is None
    assert rig.send("manager", m.StartAgent("w", "work", role="worker", budget=2500)) is DEFERRED
    assert (rig.table.get("w").budget_tokens, rig.table.get("w").budget_usd) == (2500, 1.0)
    with pytest.raises(PolicyDenied, match="positive"):
        rig.send("manager", m.StartAgent("v", "work", role="worker", budget=-1))


def test_a_slice_without_a_budget_over_the_caller_is_ignored(tmp_path):
    """With no token budget over the caller there is nothing to slice: the child keeps its role's budget."""
    extra = {"agents": {**EXTRA["agents"], "manager": {**EXTRA["agents"]["manager"], "budget": None}}}
    rig = SupervisorRig(tmp_path, extra=extra)
    try:
        rig.root()
        assert rig.send("manager", m.StartAgent("w", "work", role="worker", budget=7)) is DEFERRED
        assert rig.table.get("w").budget_tokens == 4000
        assert [e["event"] for e in rig.table.events("manager")].count("budget_slice_ignored") == 1
    finally:
        rig.close()
