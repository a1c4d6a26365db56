"""The agent loop's spans with fake ports: steps under the start span, the model call and commands inside."""

from __future__ import annotations

import json

import pytest

from agents.runtime import AgentRuntime
from swarm_core import messages as m
from swarm_core.spec import AgentSpec
from swarm_core.tracing import CURRENT, SPAN_FLUSH_S, parse_traceparent

pytestmark = pytest.mark.timeout(30)

TP = "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"


class NullLog:
    def __getattr__(self, name):
        return lambda *a, **k: None


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def answer(name, **args):
    return json.dumps({"thoughts": {"text": name}, "command": {"name": name, "args": args}})


class FakeClient:
    """Answers model calls from a script, noting the trace context each request was sent in."""

    def __init__(self, answers, clock):
        self.answers = list(answers)
        self.clock = clock
        self.sent = []
        self.request_contexts = []

    def handle(self, cls, fn):
        pass

    def send(self, dst, body):
        self.sent.append((dst, body))

    def request(self, dst, body, timeout, abort=None):
        self.request_contexts.append((type(body).__name__, CURRENT.get()))
        if isinstance(body, m.Complete):
            self.clock.t += 0.2  # the model takes its time
            return m.Completion(self.answers.pop(0), 10, 5, "replay")
        if isinstance(body, m.StepReport):
            return m.StepVerdict(m.StepVerdict.RUN)  # the supervisor lets every command run
        return None

    def reply(self, msg, body):
        pass

    def spans(self):
        return [s for _, b in self.sent if isinstance(b, m.TraceSpans) for s in b.spans]

    def span_messages(self):
        return [b for _, b in self.sent if isinstance(b, m.TraceSpans)]


class FakePorts:
    def list_agents(self):
        return []


def run_agent(answers, traceparent=TP):
    clock = Clock()
    client = FakeClient(answers, clock)
    spec = AgentSpec(agent_id="a", name="a", role_name="r", role="r", task="t",
                     commands=("list_agents", "task_complete"), endpoint="ipc://unused", run_dir="/nonexistent",
                     traceparent=traceparent)
    rt = AgentRuntime(spec, client, FakePorts(), None, NullLog(), clock=clock)
    rt.tracer.on = True
    assert rt.run() == 0
    return client


def test_steps_hang_under_the_start_span_and_contain_the_call_and_the_command():
    """Each step is a child of the spec's traceparent; the model request and the command run inside it."""
    client = run_agent([answer("list_agents"), answer("task_complete", reason="ok")])
    spans = {s[3]: s for s in client.spans()}
    step1, tool = spans["step 1"], spans["execute_tool list_agents"]
    assert (step1[0], step1[2]) == ("ab" * 16, "cd" * 8)
    assert tool[2] == step1[1] and tool[7]["gen_ai.tool.name"] == "list_agents" and tool[7]["swarm.tool.ok"] is True
    kind, ctx = client.request_contexts[0]
    assert kind == "Complete" and parse_traceparent(ctx) == ("ab" * 16, step1[1])
    kind, ctx = client.request_contexts[1]  # the step report asking for the supervisor's verdict
    assert kind == "StepReport" and parse_traceparent(ctx) == ("ab" * 16, step1[1])
    assert spans["step 2"][7]["swarm.step"] == 2 and all(s[4] == "a" for s in client.spans())


def test_spans_are_batched_and_flushed_when_the_agent_ends():
    """Fast steps share one TraceSpans message per flush interval; what is left goes out at the end."""
    steps = int(SPAN_FLUSH_S / 0.2) + 1
    client = run_agent([answer("list_agents")] * steps + [answer("task_complete", reason="ok")])
    names = [s[3] for s in client.spans()]
    assert names.count("execute_tool list_agents") == steps and f"step {steps + 1}" in names
    assert 1 < len(client.span_messages()) < steps + 1


def test_no_traceparent_starts_a_trace_of_its_own():
    """An agent started without a trace context still records its steps, in a new trace."""
    client = run_agent([answer("task_complete", reason="ok")], traceparent="")
    (step,) = [s for s in client.spans() if s[3] == "step 1"]
    assert step[2] == "" and step[0] != "ab" * 16
