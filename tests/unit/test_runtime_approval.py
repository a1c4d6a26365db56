"""The agent runtime waits for a held step's decision and keeps call ids across retries (fake bus client)."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from bus.protocol import Kind, Message, make_header
from swarm_core import messages as m
from swarm_core.errors import BusError, CallInterrupted, DeadlineExceeded, Stopped
from tests.unit.test_runtime_verdict import ANSWER, ScriptedClient, runtime

pytestmark = pytest.mark.timeout(10)

HOLD = m.StepVerdict(m.StepVerdict.HOLD, "", "req-1")


class ApprovalClient(ScriptedClient):
    """ScriptedClient that also answers AwaitApproval from a script and records every model call."""

    def __init__(self, verdicts: list[Any], clock: Any, answers: list[Any], completions: list[Any]) -> None:
        super().__init__(verdicts, clock)
        self.answers = list(answers)
        self.completions = list(completions)
        self.calls: list[m.Complete] = []
        self.asks: list[m.AwaitApproval] = []
        self.on_ask: Callable[[], None] = lambda: None

    def request(self, dst: str, body: Any, timeout: float, abort: Callable[[], bool] | None = None) -> Any:
        if isinstance(body, m.AwaitApproval):
            self.asks.append(body)
            self.on_ask()
            answer = self.answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer
        if isinstance(body, m.Complete):
            self.calls.append(body)
            outcome = self.completions.pop(0) if self.completions else None
            if isinstance(outcome, Exception):
                raise outcome
        return super().request(dst, body, timeout, abort)


def approving(verdicts, answers, completions=()):
    rt, plain = runtime([])
    client = ApprovalClient(verdicts, plain.clock, answers, list(completions))
    rt.client = client
    return rt, client


def answer(state: str, text: str = "") -> m.ApprovalAnswer:
    return m.ApprovalAnswer("req-1", state, text)


def test_a_held_step_waits_through_pending_answers_then_runs_when_approved():
    """hold → pending, pending → approved: the command runs and the operator's note reaches the inbox."""
    rt, client = approving([HOLD], [answer("pending"), answer("pending"), answer("approved", "go on")])
    assert rt.step() == (True, "all done")
    assert [a.request_id for a in client.asks] == ["req-1"] * 3
    assert [n.line() for n in rt.inbox.notes] == ["[message from operator] go on"]


def test_a_denied_step_does_not_run_and_the_model_reads_the_reason_next_step():
    """Denied: the command is not run; the reason is its result, in the next prompt sent to the model."""
    rt, client = approving([HOLD, m.StepVerdict()], [answer("denied", "too risky")])
    assert rt.step() is None and rt.stop_reason is None
    assert rt.history[-1] == {"command": "task_complete", "args": {"reason": "all done"},
                              "result": "task_complete was not run: approval denied (too risky)"}
    assert rt.step() == (True, "all done")
    assert "approval denied (too risky)" in client.calls[-1].prompt


def test_a_failed_poll_is_asked_again_after_a_pause():
    """A poll lost with the supervisor (restarting) is repeated; the decision still arrives."""
    rt, client = approving([HOLD], [BusError("broker lost"), DeadlineExceeded("slow"), answer("approved")])
    assert rt.step() == (True, "all done")
    assert len(client.asks) == 3 and len(client.polls) == 2


def test_a_stop_while_waiting_ends_the_wait_without_running_the_command():
    """Killed (or the STOP file) while waiting: the wait ends and the command never runs."""
    rt, client = approving([HOLD], [answer("pending")] * 5)
    client.on_ask = lambda: rt.request_stop("operator") if len(client.asks) == 2 else None
    assert rt.step() is None
    assert rt.stop_reason == "operator" and len(client.asks) == 2
    assert not [h for h in rt.history if h["command"] == "task_complete"]


@pytest.mark.parametrize("lost", [BusError("broker lost"), CallInterrupted("gateway restarted")])
def test_a_lost_model_call_is_asked_again_with_the_same_step_and_call_id(lost):
    """A call lost with the bus or the gateway keeps its step number and call id (counted once)."""
    rt, client = approving([m.StepVerdict()], [], completions=[lost])
    assert rt.step() is None and rt.steps == 0
    assert rt.step() == (True, "all done")
    first, second = client.calls
    assert first.call_id == second.call_id and first.call_id.endswith("-1")
    assert [r.step for r in client.reports] == [1]


def test_call_ids_differ_between_steps_and_between_runs_of_an_agent():
    """Each step has its own call id, and a restarted agent (a new runtime) never reuses the old ones."""
    rt, client = approving([DeadlineExceeded("no verdict"), m.StepVerdict()], [])
    assert rt.step() is None
    assert rt.step() == (True, "all done")
    other, other_client = approving([m.StepVerdict()], [])
    other.step()
    ids = [c.call_id for c in client.calls] + [c.call_id for c in other_client.calls]
    assert len(set(ids)) == 3 and ids[0].endswith("-1") and ids[1].endswith("-2") and ids[2].endswith("-1")


class Restarting(ApprovalClient):
    """The first model call is still waiting when the supervisor says the gateway restarted."""

    def __init__(self, *a: Any, runtime: Any = None, sender: str = "supervisor", **k: Any) -> None:
        super().__init__(*a, **k)
        self.runtime = runtime
        self.sender = sender

    def request(self, dst: str, body: Any, timeout: float, abort: Callable[[], bool] | None = None) -> Any:
        if isinstance(body, m.Complete) and not self.calls:
            self.calls.append(body)
            header = make_header(Kind.EVENT, m.ServiceRestarted.TYPE, self.sender, "w")
            self.runtime._on_service_restarted(Message(header, m.ServiceRestarted("gateway")))
            if abort is not None and abort():
                raise Stopped("aborted")
            return m.Completion(ANSWER)
        return super().request(dst, body, timeout, abort)


def test_a_gateway_restart_during_a_call_asks_again_with_the_same_call_id():
    """Told the gateway restarted while waiting, the agent asks again under the same step and call id."""
    rt, plain = runtime([])
    rt.client = client = Restarting([m.StepVerdict()], plain.clock, [], [], runtime=rt)
    assert rt.step() is None and rt.steps == 0
    assert rt.step() == (True, "all done")
    assert len(client.calls) == 2 and client.calls[0].call_id == client.calls[1].call_id


def test_a_restart_notice_from_anyone_but_the_supervisor_is_ignored():
    """An agent cannot make another agent drop its call by claiming the gateway restarted."""
    rt, plain = runtime([])
    rt.client = client = Restarting([m.StepVerdict()], plain.clock, [], [], runtime=rt, sender="intruder")
    assert rt.step() == (True, "all done") and len(client.calls) == 1
