"""The durable inbox and idempotent requests in the supervisor's real parts (fake spawner, clock and bus).

A message is in the registry before its sender is answered, pushed until
its agent acknowledges it, pushed again to a restarted agent; a request id
sent again gets the first outcome, never a second action.
"""

from __future__ import annotations

import pytest

from bus.client import DEFERRED
from bus.protocol import Kind
from orchestrator.supervisor.messenger import REPUSH_AFTER
from swarm_core import messages as m
from swarm_core.errors import InvalidRequest, PolicyDenied, SwarmError
from swarm_core.status import Status
from tests.supervisor_harness import SupervisorRig

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
def rig(tmp_path):
    r = SupervisorRig(tmp_path)
    yield r
    r.close()


def pushed(rig: SupervisorRig, agent_id: str) -> list[m.InboxMessage]:
    return rig.client.to(agent_id, m.InboxMessage)


def tick_after(rig: SupervisorRig, seconds: float) -> None:
    rig.clock.advance(seconds)
    rig.reconciler.tick()


def test_operator_message_is_kept_before_the_answer(rig):
    """swarm send's message is in the registry, unread, when the operator gets its id; then it is pushed."""
    rig.root()
    reply = rig.send("cli-1", m.OperatorMessage("manager", "hello", "r1"))
    note_id = reply.info["message_id"]
    (note,) = rig.table.inbox.unread("manager")
    assert (note.id, note.sender, note.kind, note.text) == (note_id, "operator", "message", "hello")
    assert [(b.message_id, b.text) for b in pushed(rig, "manager")] == [(note_id, "hello")]


def test_a_retried_send_is_kept_and_delivered_once(rig):
    """The same request id sent twice keeps one message and answers both tries with its id."""
    rig.root()
    first = rig.send("cli-1", m.OperatorMessage("manager", "once", "same-id"))
    again = rig.send("cli-1", m.OperatorMessage("manager", "once", "same-id"))
    assert first.info == again.info
    assert len(rig.table.inbox.all()) == 1 and len(pushed(rig, "manager")) == 1


def test_an_agent_cannot_send_a_persons_message(rig):
    """Only an operator peer may post a message as "operator"; nothing is kept for an agent that tries."""
    rig.root()
    rig.start("manager", "w")
    with pytest.raises(PolicyDenied):
        rig.send("w", m.OperatorMessage("manager", "I am the operator"))
    assert rig.table.inbox.all() == []


def test_unread_messages_are_pushed_again_until_acknowledged(rig):
    """An unread message is pushed again after REPUSH_AFTER; once a step report acknowledges it, never."""
    rig.root()
    note_id = rig.send("cli-1", m.OperatorMessage("manager", "are you there?")).info["message_id"]
    tick_after(rig, REPUSH_AFTER / 2)
    assert len(pushed(rig, "manager")) == 1
    tick_after(rig, REPUSH_AFTER)
    assert len(pushed(rig, "manager")) == 2
    rig.send("manager", m.StepReport("manager", 1, "do_nothing", inbox_ids=[note_id]))
    assert rig.table.inbox.unread("manager") == []
    assert rig.table.inbox.get(note_id).acked_pid == rig.table.get("manager").pid
    tick_after(rig, 10 * REPUSH_AFTER)
    assert len(pushed(rig, "manager")) == 2


def test_a_restarted_agent_gets_what_it_had_not_read(rig):
    """A crash before the acknowledgement: the restarted agent is sent the message as soon as it is ready."""
    rig.root()
    w = rig.start("manager", "w")
    note_id = rig.send("manager", m.PostMessage("w", "status?")).message_id
    rig.reconciler.on_exit(w.pid, -9)
    assert rig.status("w") == Status.STARTING
    tick_after(rig, 10 * REPUSH_AFTER)  # not on the bus yet: nothing is pushed to it
    assert len(pushed(rig, "w")) == 1
    rig.send("w", m.AgentReady("w", 2), Kind.EVENT)
    assert [b.message_id for b in pushed(rig, "w")] == [note_id, note_id]


def test_acknowledgements_only_count_for_ones_own_messages(rig):
    """An agent cannot mark another agent's messages read, nor report (and acknowledge) in another's name."""
    rig.root()
    rig.start("manager", "w")
    note_id = rig.send("cli-1", m.OperatorMessage("manager", "for the manager")).info["message_id"]
    rig.send("w", m.StepReport("w", 1, "do_nothing", inbox_ids=[note_id]))
    with pytest.raises(PolicyDenied):  # the authorization table: an agent reports only its own steps
        rig.send("w", m.StepReport("manager", 1, "do_nothing", inbox_ids=[note_id]))
    assert [n.id for n in rig.table.inbox.unread("manager")] == [note_id]


def test_a_question_and_its_reply_are_both_kept(rig):
    """message_agent posts a question; the target's reply names it and is kept for the asker."""
    rig.root()
    rig.start("manager", "w")
    question = rig.send("manager", m.PostMessage("w", "what is 6 x 7?", "question")).message_id
    reply = rig.send("w", m.PostMessage("manager", "42", "reply", question)).message_id
    got = rig.table.inbox.get(reply)
    assert (got.agent_id, got.sender, got.kind, got.reply_to, got.text) == ("manager", "w", "reply",
                                                                           question, "42")


@pytest.mark.parametrize("sender, body, error", [
    ("manager", m.PostMessage("nobody", "hi"), PolicyDenied),  # not in its subtree (swarm_core/authz.py)
    ("manager", m.PostMessage("manager", "to myself"), PolicyDenied),
    ("w", m.PostMessage("manager", "a question up the tree"), PolicyDenied),
    ("manager", m.PostMessage("w", "   "), InvalidRequest),
    ("manager", m.PostMessage("w", "x" * 20_001), InvalidRequest),
    ("manager", m.PostMessage("w", "hi", "notice"), InvalidRequest),
    ("manager", m.PostMessage("w", "hi", "reply", "no-such-question"), InvalidRequest),
    ("manager", m.PostMessage("w", "hi", "question", "", "r" * 129), InvalidRequest),
    ("stranger", m.PostMessage("w", "hi"), PolicyDenied),
])
def test_bad_posts_are_refused_and_nothing_is_kept(rig, sender, body, error):
    """Unknown targets, self-messages, blank or huge texts, bad kinds, forged replies, strangers: refused."""
    rig.root()
    rig.start("manager", "w")
    with pytest.raises(error):
        rig.send(sender, body)
    assert rig.table.inbox.all() == []


def test_a_message_for_an_ended_agent_is_refused_and_unread_ones_stop_being_pushed(rig):
    """Posting to a finished agent is refused; what it never read is no longer pushed."""
    rig.root()
    rig.start("manager", "w")
    rig.send("manager", m.PostMessage("w", "still there?"))
    rig.send("w", m.AgentDone("w", "finished"))
    with pytest.raises(PolicyDenied):
        rig.send("manager", m.PostMessage("w", "hello?"))
    tick_after(rig, 10 * REPUSH_AFTER)
    assert len(pushed(rig, "w")) == 1


def test_a_result_is_kept_for_the_parent_before_the_child_is_answered(rig):
    """AgentDone's handler has kept the result in the parent's inbox by the time it returns."""
    rig.root()
    rig.start("manager", "w")
    rig.send("w", m.AgentDone("w", "the result"))
    (note,) = rig.table.inbox.unread("manager")
    assert (note.sender, note.kind, note.text) == ("w", "result", "w finished: the result")


def test_a_retried_start_agent_starts_one_agent(rig):
    """The same start_agent request id, tried while starting and after: one agent, each try answered."""
    rig.root()
    assert rig.send("manager", m.StartAgent("w", "task", role="worker", request_id="s1")) is DEFERRED
    assert rig.send("manager", m.StartAgent("w", "task", role="worker", request_id="s1")) is DEFERRED
    assert len(rig.spawner.specs) == 2  # the root and w
    rig.send("w", m.AgentReady("w", 1), Kind.EVENT)
    (request, reply), = rig.client.replies  # the try that still waits is answered
    assert request.body.request_id == "s1" and reply.agent_id == "w"
    again = rig.send("manager", m.StartAgent("w", "task", role="worker", request_id="s1"))
    assert again == m.AgentStarted("w", 1, rig.table.get("w").pid)
    assert [r.id for r in rig.table.all()] == ["manager", "w"]


def test_a_retried_start_agent_that_never_started_says_so(rig):
    """A retry of a start whose agent failed to spawn gets that failure, not a new agent."""
    rig.root()
    rig.spawner.fail = "no zygote"
    with pytest.raises(SwarmError):
        rig.send("manager", m.StartAgent("w", "task", role="worker", request_id="s2"))
    rig.spawner.fail = None
    with pytest.raises(SwarmError, match="did not start"):
        rig.send("manager", m.StartAgent("w", "task", role="worker", request_id="s2"))
    assert [r.id for r in rig.table.all()] == ["manager", "w"]


def test_a_retried_delete_answers_with_the_first_outcome(rig):
    """A delete tried twice under one request id is answered with what the first try stopped."""
    rig.root()
    rig.start("manager", "w")
    rig.start("w", "sub")
    first = rig.send("cli-1", m.DeleteAgent("w", "operator", request_id="d1"))
    again = rig.send("cli-1", m.DeleteAgent("w", "operator", request_id="d1"))
    assert first.info == again.info == {"stopped": 2}
    assert rig.send("cli-1", m.DeleteAgent("w", "operator", request_id="d2")).info == {"stopped": 0}
