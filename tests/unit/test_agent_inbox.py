"""The agent's side of the durable inbox: each message id reaches the model once, and is acknowledged.

The runtime runs over a fake bus client and fake ports: what the model is
shown (the prompt), what is logged (``inbox_shown``, the prompts log) and
what is sent to the supervisor (``InboxAck``, replies) are recorded.
"""

from __future__ import annotations

import json
from typing import Any, Callable

import pytest

from agents.commands import registry
from agents.inbox import AgentInbox, Arrival, Note
from agents.runtime import AgentRuntime
from bus.protocol import Kind, Message, make_header
from swarm_core import messages as m
from swarm_core.errors import DeadlineExceeded
from swarm_core.spec import AgentSpec
from tests.supervisor_harness import FakeClock, NullLog

pytestmark = pytest.mark.timeout(10)


def answer(command: str, speak: str = "", **args: Any) -> str:
    return json.dumps({"thoughts": {"text": "t", "speak": speak}, "command": {"name": command, "args": args}})


class Bus:
    """Answers Complete with the scripted answers (recording prompts), StepReport with run."""

    def __init__(self, answers: list[str]) -> None:
        self.answers = list(answers)
        self.prompts: list[str] = []
        self.sent: list[tuple[str, Any]] = []
        self.reports: list[m.StepReport] = []
        self.lose_reports = False
        self.handlers: dict[str, Callable] = {}

    def handle(self, cls: type, fn: Callable) -> None:
        self.handlers[cls.TYPE] = fn

    def send(self, dst: str, body: Any) -> None:
        self.sent.append((dst, body))

    def poll(self, timeout: float = 0.0, until: Callable[[], bool] | None = None) -> None:
        pass

    def request(self, dst: str, body: Any, timeout: float, abort: Callable[[], bool] | None = None) -> Any:
        if isinstance(body, m.Complete):
            self.prompts.append(body.prompt)
            return m.Completion(self.answers.pop(0))
        self.reports.append(body)
        if self.lose_reports:
            raise DeadlineExceeded("the supervisor is down")
        return m.StepVerdict()

    def deliver(self, body: m.InboxMessage) -> None:
        header = make_header(Kind.EVENT, body.TYPE, "supervisor", "w")
        self.handlers[m.InboxMessage.TYPE](Message(header, body))

    def acks(self) -> list[list[str]]:
        """The acknowledgements the step reports carried (empty ones left out)."""
        return [r.inbox_ids for r in self.reports if r.inbox_ids]


class Ports:
    """Records the replies the runtime posts."""

    def __init__(self) -> None:
        self.replies: list[tuple[str, str, str]] = []

    def reply(self, key: str, question_id: str, text: str) -> str:
        self.replies.append((key, question_id, text))
        return "r"

    def wait_for_news(self, seconds: float) -> bool:
        return False


def runtime(answers: list[str]) -> tuple[AgentRuntime, Bus, Ports, NullLog]:
    registry.load_builtin_commands()
    bus, ports, log = Bus(answers), Ports(), NullLog()
    spec = AgentSpec(agent_id="w", name="w", role_name="worker", role="a worker", task="t",
                     commands=("do_nothing", "task_complete"), endpoint="ipc:///x", run_dir="/tmp")
    return AgentRuntime(spec, bus, ports=ports, workspace=None, log=log, clock=FakeClock()), bus, ports, log


def shown(log: NullLog) -> list[list[str]]:
    return [kw["ids"] for event, kw in log.events if event == "inbox_shown"]


def test_an_inbox_shows_each_id_once_and_reports_copies():
    """A copy of a waiting message is dropped; a copy of a shown one is reported for a new acknowledgement."""
    inbox = AgentInbox()
    note = Note("operator", "message", "hi", "id1")
    assert inbox.receive(note) is Arrival.NEW
    assert inbox.receive(note) is Arrival.WAITING
    assert inbox.take() == ([note], [])
    assert inbox.receive(note) is Arrival.SHOWN
    assert inbox.take() == ([], [])


def test_a_message_enters_one_prompt_is_logged_and_acknowledged():
    """The message is in the next prompt, its id in the prompts log and that step's report; a copy is not."""
    rt, bus, _, log = runtime([answer("do_nothing"), answer("do_nothing"), answer("do_nothing")])
    bus.deliver(m.InboxMessage("operator", "the secret word is kiwi", "message", "id1"))
    rt.step()
    assert "the secret word is kiwi" in bus.prompts[0]
    assert shown(log) == [["id1"]] and bus.acks() == [["id1"]]
    rt.step()
    assert bus.acks() == [["id1"]]  # acknowledged once
    bus.deliver(m.InboxMessage("operator", "the secret word is kiwi", "message", "id1"))
    rt.step()
    assert bus.acks() == [["id1"], ["id1"]]  # a copy is acknowledged again, not shown again
    assert "INBOX (new" not in bus.prompts[2] and shown(log) == [["id1"]]


def test_an_acknowledgement_is_sent_again_until_a_report_is_answered():
    """While the supervisor answers no report, every report carries the unacknowledged ids."""
    rt, bus, _, _ = runtime([answer("do_nothing"), answer("do_nothing"), answer("do_nothing")])
    bus.deliver(m.InboxMessage("operator", "hello", "message", "id1"))
    bus.lose_reports = True
    rt.step()
    rt.step()
    bus.lose_reports = False
    rt.step()
    assert [r.inbox_ids for r in bus.reports] == [["id1"], ["id1"], ["id1"]]


def test_a_question_is_shown_once_and_answered_with_speak():
    """A question enters one prompt and is answered (to its sender, naming it) with the step's speak."""
    rt, bus, ports, log = runtime([answer("do_nothing", speak="it is 42"), answer("do_nothing")])
    bus.deliver(m.InboxMessage("manager", "what is 6 x 7?", "question", "q1"))
    rt.step()
    assert "what is 6 x 7?" in bus.prompts[0] and shown(log) == [["q1"]]
    assert ports.replies == [("manager", "q1", "it is 42")]
    rt.step()
    assert "6 x 7" not in bus.prompts[1].split("RECENT HISTORY")[0] and len(ports.replies) == 1


def test_a_reply_is_taken_by_the_waiting_call_not_the_prompt():
    """The reply to our question goes to the message_agent call waiting for it, logged as shown there."""
    rt, bus, _, log = runtime([answer("do_nothing")])
    bus.deliver(m.InboxMessage("a", "yes", "reply", "r1", reply_to="q9"))
    assert rt.inbox.reply_ready("q9") and not rt.inbox.reply_ready("q8")
    assert rt.take_reply("q9") == "yes" and rt.take_reply("q9") is None
    assert shown(log) == [["r1"]]
    rt.step()
    assert "yes" not in bus.prompts[0] and bus.acks() == [["r1"]]


def test_stopping_answers_every_question_still_open():
    """An agent that stops tells each asker it was stopped, even for questions it never showed."""
    rt, bus, ports, _ = runtime([])
    bus.deliver(m.InboxMessage("manager", "are you done?", "question", "q1"))
    rt.request_stop("operator")
    assert rt.run() == 0
    assert ports.replies == [("manager", "q1", "w was stopped (operator)")]
