"""The agent runtime asks the supervisor before each command and obeys the verdict (fake bus client)."""

from __future__ import annotations

import json
from typing import Any, Callable

import pytest

from agents.commands import registry
from agents.runtime import REFUSED_PAUSE, STEP_VERDICT_TIMEOUT, AgentRuntime
from swarm_core import messages as m
from swarm_core.errors import DeadlineExceeded, PolicyDenied
from swarm_core.spec import AgentSpec
from tests.supervisor_harness import FakeClock, NullLog

pytestmark = pytest.mark.timeout(10)

ANSWER = json.dumps({"thoughts": {"text": "t", "speak": "finishing"},
                     "command": {"name": "task_complete", "args": {"reason": "all done"}}})


class ScriptedClient:
    """Answers Complete with ANSWER and each StepReport with the next scripted verdict (or error)."""

    def __init__(self, verdicts: list[Any], clock: FakeClock) -> None:
        self.verdicts = list(verdicts)
        self.clock = clock
        self.reports: list[m.StepReport] = []
        self.polls: list[float] = []
        self.handlers: dict[str, Callable] = {}

    def handle(self, cls: type, fn: Callable) -> None:
        self.handlers[cls.TYPE] = fn

    def send(self, dst: str, body: Any) -> None:
        pass

    def reply(self, request: Any, body: Any) -> None:
        pass

    def poll(self, timeout: float = 0.0, until: Callable[[], bool] | None = None) -> None:
        self.polls.append(timeout)
        self.clock.advance(timeout)

    def request(self, dst: str, body: Any, timeout: float, abort: Callable[[], bool] | None = None) -> Any:
        if isinstance(body, m.Complete):
            return m.Completion(ANSWER)
        self.reports.append(body)
        verdict = self.verdicts.pop(0)
        if isinstance(verdict, Exception):
            raise verdict
        return verdict


def runtime(verdicts: list[Any]) -> tuple[AgentRuntime, ScriptedClient]:
    registry.load_builtin_commands()  # as the zygote does before any agent runs
    clock = FakeClock()
    client = ScriptedClient(verdicts, clock)
    spec = AgentSpec(agent_id="w", name="w", role_name="worker", role="a worker", task="t",
                     commands=("task_complete",), endpoint="ipc:///x", run_dir="/tmp")
    return AgentRuntime(spec, client, ports=None, workspace=None, log=NullLog(), clock=clock), client


def test_run_verdict_runs_the_command():
    """With a run verdict the command runs (task_complete finishes the agent)."""
    rt, client = runtime([m.StepVerdict(m.StepVerdict.RUN)])
    assert rt.step() == (True, "all done")
    assert [(r.step, r.command) for r in client.reports] == [(1, "task_complete")]


def test_stop_verdict_means_the_command_never_runs():
    """With a stop verdict the command is not run and the agent records the reason to stop."""
    rt, _ = runtime([m.StepVerdict(m.StepVerdict.STOP, "max_steps")])
    assert rt.step() is None
    assert rt.stop_reason == "max_steps"
    assert not [h for h in rt.history if h["command"] == "task_complete"]


def test_warn_verdict_runs_and_tells_the_model():
    """A warning still runs the command and puts the supervisor's notice in the inbox for the next prompt."""
    rt, _ = runtime([m.StepVerdict(m.StepVerdict.WARN, "you repeat yourself")])
    assert rt.step() == (True, "all done")
    assert [n.line() for n in rt.inbox.notes] == ["[notice from supervisor] you repeat yourself"]


def test_no_verdict_in_time_skips_the_command_and_goes_on():
    """With no answer from the supervisor the command is not run, the step is recorded, the agent goes on."""
    rt, _ = runtime([DeadlineExceeded("no reply")])
    assert rt.step() is None and rt.stop_reason is None
    assert rt.history[-1]["command"] == "(not run)"


def test_a_throttled_report_is_asked_again_after_a_pause():
    """A report refused by the flood gate is sent again after a pause; the verdict then decides."""
    rt, client = runtime([PolicyDenied("flooding"), PolicyDenied("flooding"), m.StepVerdict()])
    assert rt.step() == (True, "all done")
    assert len(client.reports) == 3 and client.polls == [REFUSED_PAUSE, REFUSED_PAUSE]


def test_throttled_reports_give_up_at_the_verdict_deadline():
    """Refusals that go on past the verdict deadline skip the command (bounded, never a spin)."""
    rt, client = runtime([PolicyDenied("flooding")] * 1000)
    assert rt.step() is None
    assert len(client.reports) <= STEP_VERDICT_TIMEOUT / REFUSED_PAUSE + 1
