"""The gateway service's admission logic with fake ports: waiting, throttling, deadlines, cost, stop."""

from __future__ import annotations

import threading
import time
from collections import deque

import pytest

from bus.client import DEFERRED
from bus.dispatch import Dispatcher
from bus.protocol import Kind, Message, make_header
from orchestrator.config import LLM, Bucket, Price, Quotas
from orchestrator.gateway.providers.base import Result
from orchestrator.gateway.service import GatewayService
from swarm_core import messages as m
from swarm_core.errors import PeerBusy, ProviderError, Stopped
from tests.support import wait_until

pytestmark = pytest.mark.timeout(30)


class NullLog:
    def __getattr__(self, name):
        return lambda *a, **k: None


class FakeClient:
    """The bus-client port: records what the service sends; runs handed-back calls on poll."""

    def __init__(self):
        self.replies = []  # (request msg, body)
        self.errors = []  # (request msg, SwarmError)
        self.sent = []  # (dst, body)
        self.calls = deque()
        self._ready = threading.Condition()
        self.dispatcher = Dispatcher("gateway", self.reply, self.reply_error)  # the real client's dispatch
        self.handlers = self.dispatcher.handlers

    def handle(self, cls, fn):
        self.handlers[cls.TYPE] = fn

    def authorize_with(self, check):
        self.dispatcher.authorize = check

    def deliver(self, msg):
        """What the real client does with a received request or event."""
        self.dispatcher.dispatch(msg)

    def call_soon_threadsafe(self, fn):
        with self._ready:
            self.calls.append(fn)
            self._ready.notify()

    def poll(self, timeout=0.0):
        """Run handed-back calls until ``timeout`` passes, waking as soon as one arrives."""
        end = time.monotonic() + timeout
        while True:
            with self._ready:
                if not self.calls:
                    self._ready.wait(max(0.0, end - time.monotonic()))
                fn = self.calls.popleft() if self.calls else None
            if fn is not None:
                fn()
            elif time.monotonic() >= end:
                return

    def reply(self, msg, body):
        self.replies.append((msg, body))

    def reply_error(self, msg, err):
        self.errors.append((msg, err))

    def send(self, dst, body):
        self.sent.append((dst, body))

    def usage(self, agent):
        return [b for d, b in self.sent if d == "supervisor" and isinstance(b, m.Usage) and b.agent_id == agent]

    def spans(self):
        return [span for d, b in self.sent if isinstance(b, m.TraceSpans) for span in b.spans]


class GatedProvider:
    """A provider whose calls block until the test releases them (one gate per call)."""

    name = "gated"

    def __init__(self, concurrency=0):
        self.concurrency = concurrency
        self.started = []
        self.gates = {}
        self.fail = None

    def complete(self, req):
        gate = threading.Event()
        self.gates[req.agent_id] = gate
        self.started.append(req.agent_id)
        gate.wait(10)
        if self.fail is not None:
            raise self.fail
        return Result(f"answer for {req.agent_id}", 10, 5, "m1")

    def release(self, agent):
        wait_for(lambda: agent in self.gates)
        self.gates.pop(agent).set()

    def close(self):
        pass


def wait_for(cond, timeout=5.0):
    wait_until(cond, timeout, "condition", step=0.001)


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def _msg(agent, body=None, deadline=0.0, src=None):
    body = body or m.Complete(agent, "p" * 40, ["task_complete"], 64, [], agent, {})
    h = make_header(Kind.REQUEST, body.TYPE, src or agent, "gateway", deadline=deadline)
    return Message(h, body)


def _service(provider, quotas=None, llm=None, clock=None, wall=time.time, **kw):
    client = FakeClient()
    svc = GatewayService(client, provider, quotas or Quotas(), llm or LLM(provider="replay", cassette="x"),
                         log=NullLog(), clock=clock or Clock(), wall=wall, **kw)
    svc.attach()
    return svc, client


def _settle(client, cond):
    wait_for(lambda: (client.poll(0), cond())[1])


def test_single_slot_provider_queues_calls_and_reports_waiting():
    """With one slot (local) the second agent waits (Usage waiting), then runs when the first is done."""
    provider = GatedProvider(concurrency=1)
    svc, client = _service(provider)
    assert svc.on_complete(_msg("a")) is DEFERRED
    assert svc.on_complete(_msg("b")) is DEFERRED
    wait_for(lambda: provider.started == ["a"])
    assert [u.status for u in client.usage("b")] == ["waiting"]
    provider.release("a")
    _settle(client, lambda: provider.started == ["a", "b"])
    assert [u.status for u in client.usage("b")] == ["waiting", "running"]
    provider.release("b")
    _settle(client, lambda: len(client.replies) == 2)
    assert [body.text for _, body in client.replies] == ["answer for a", "answer for b"]


def test_throttled_call_is_released_by_the_clock():
    """A call over the rate is held (Usage throttled) and admitted when the fake clock passes the pause."""
    provider = GatedProvider()
    clock = Clock()
    svc, client = _service(provider, Quotas(agent=Bucket(requests_per_minute=1), pause_seconds=0.5),
                           clock=clock)
    svc.on_complete(_msg("a"))
    provider.release("a")
    _settle(client, lambda: len(client.replies) == 1)
    svc.on_complete(_msg("a"))
    assert client.usage("a")[-1].status == "throttled"
    clock.t += 0.4
    svc.pump()
    assert client.usage("a")[-1].status == "throttled"  # still held: nothing more was sent
    clock.t += 0.1
    svc.pump()
    wait_for(lambda: len(provider.started) == 2)
    assert client.usage("a")[-1].status == "running"
    provider.release("a")
    _settle(client, lambda: len(client.replies) == 2)


def test_cost_comes_from_the_price_table():
    """The Completion and the Usage carry the cost of the provider's reported tokens."""
    provider = GatedProvider()
    llm = LLM(provider="replay", cassette="x", prices={"m1": Price(prompt=1.0, completion=2.0)})
    svc, client = _service(provider, llm=llm)
    svc.on_complete(_msg("a"))
    provider.release("a")
    _settle(client, lambda: client.replies)
    body = client.replies[0][1]
    assert (body.prompt_tokens, body.completion_tokens, body.model) == (10, 5, "m1")
    assert body.cost_usd == pytest.approx((10 * 1.0 + 5 * 2.0) / 1000)
    last = client.usage("a")[-1]
    assert (last.tokens, last.requests, last.cost_usd) == (15, 1, pytest.approx(0.02))


def test_answer_after_the_deadline_is_not_sent_but_usage_counts():
    """A call finishing after its caller's deadline gets no reply; its tokens are still counted."""
    now = [1000.0]
    provider = GatedProvider()
    svc, client = _service(provider, wall=lambda: now[0])
    svc.on_complete(_msg("a", deadline=1001.0))
    now[0] = 1002.0
    provider.release("a")
    _settle(client, lambda: client.usage("a"))
    assert client.replies == [] and client.errors == []
    assert client.usage("a")[-1].tokens == 15


def test_provider_crash_becomes_a_provider_error_reply():
    """An unexpected exception in a provider is answered as provider_error; the service goes on."""
    provider = GatedProvider()
    provider.fail = KeyError("boom")
    svc, client = _service(provider)
    svc.on_complete(_msg("a"))
    provider.release("a")
    _settle(client, lambda: client.errors)
    err = client.errors[0][1]
    assert isinstance(err, ProviderError) and "KeyError" in err.message
    provider.fail = None
    svc.on_complete(_msg("b"))
    provider.release("b")
    _settle(client, lambda: client.replies)


def test_too_many_queued_calls_of_one_agent_are_refused():
    """An agent flooding the gateway gets peer_busy beyond its queue limit."""
    provider = GatedProvider()
    svc, client = _service(provider, max_queued_per_agent=2)
    svc.on_freeze(_msg("", m.Freeze("a", True, "t"), src="supervisor"))
    svc.on_complete(_msg("a"))
    svc.on_complete(_msg("a"))
    with pytest.raises(PeerBusy):
        svc.on_complete(_msg("a"))


def test_freeze_of_all_with_one_agent_thawed():
    """Freeze all then thaw one: only that agent's calls run."""
    provider = GatedProvider()
    svc, client = _service(provider)
    svc.on_freeze(_msg("", m.Freeze("", True, "t"), src="supervisor"))
    svc.on_freeze(_msg("", m.Freeze("b", False, "t"), src="supervisor"))
    svc.on_complete(_msg("a"))
    svc.on_complete(_msg("b"))
    wait_for(lambda: provider.started == ["b"])
    provider.release("b")
    svc.on_freeze(_msg("", m.Freeze("", False, "t"), src="supervisor"))
    wait_for(lambda: "a" in provider.started)
    provider.release("a")
    _settle(client, lambda: len(client.replies) == 2)


def test_stop_answers_held_and_running_calls_with_stopped():
    """The stop answers held calls at once and running calls after the drain, and says it is busy."""
    provider = GatedProvider()
    svc, client = _service(provider)
    svc.on_freeze(_msg("", m.Freeze("b", True, "t"), src="supervisor"))
    svc.on_complete(_msg("a"))
    svc.on_complete(_msg("b"))
    wait_for(lambda: provider.started == ["a"])
    svc.stop_accepting()
    svc.drain(time.monotonic() + 0.05, hurry=lambda: False)
    svc.close()
    assert sorted(msg.header.src for msg, err in client.errors if isinstance(err, Stopped)) == ["a", "b"]
    assert svc.busy
    with pytest.raises(Stopped):
        svc.on_complete(_msg("c"))
    provider.release("a")


def test_control_messages_only_from_the_supervisor():
    """Freeze and Stop from an agent or an operator are refused by the dispatch; the supervisor's pass."""
    svc, client = _service(GatedProvider())
    for src in ("x", "cli-1"):
        client.deliver(_msg("", m.Freeze("a", True, "t"), src=src))
        client.deliver(_msg("", m.Stop("t"), src=src))
    assert [type(e).__name__ for _, e in client.errors] == ["PolicyDenied"] * 4
    senders = ["x", "x", "cli-1", "cli-1"]
    assert all(f" {src} " in e.message and " refused: " in e.message for (_, e), src in zip(client.errors, senders))
    assert svc.stop_reason == "" and "a" not in svc._freezes
    client.deliver(_msg("", m.Stop("bye"), src="supervisor"))
    assert svc.stop_reason == "bye"


def test_an_agent_asks_only_for_its_own_calls():
    """A Complete whose agent_id is not the authenticated sender is refused before it is queued."""
    svc, client = _service(GatedProvider())
    client.deliver(_msg("a", m.Complete("b", "prompt", ["do_nothing"])))
    assert [e.code for _, e in client.errors] == ["policy_denied"] and svc._queue == []


class WordyProvider(GatedProvider):
    """Answers with whatever text the test queues (and blocks until released, like its parent)."""

    def __init__(self, texts):
        super().__init__()
        self.texts = list(texts)

    def complete(self, req):
        res = super().complete(req)
        return Result(self.texts.pop(0), res.prompt_tokens, res.completion_tokens, res.model)


def _freeze_msg(agent, frozen):
    return Message(make_header(Kind.REQUEST, "freeze", "supervisor", "gateway"),
                   m.Freeze(agent, frozen, "operator"))


def _trip(provider_texts, deadline=0.0, wall=time.time):
    """A service whose breaker (FBI, threshold 3) has seen 3 calls of a, answered from ``provider_texts``."""
    from orchestrator.config import Safety

    provider = WordyProvider(provider_texts)
    svc, client = _service(provider, safety=Safety(breaker_words=("FBI",), breaker_threshold=3), wall=wall)
    for n in range(3):
        svc.on_complete(_msg("a", deadline=deadline))
        provider.release("a")
        _settle(client, lambda n=n: len(client.replies) == min(n + 1, 2) and len(provider.started) == n + 1
                and not svc.busy)
    return svc, client, provider


def test_breaker_holds_the_tripping_answer_until_thaw():
    """The answer that trips the breaker is not delivered while frozen; the thaw delivers it."""
    svc, client, provider = _trip(["call the FBI", "FBI again", "the fbi!", "all clean"])
    tripped = [b for d, b in client.sent if isinstance(b, m.BreakerTripped)]
    assert [(t.agent_id, t.words, t.streak) for t in tripped] == [("a", ["FBI"], 3)]
    assert [b.text for _, b in client.replies] == ["call the FBI", "FBI again"]  # the 3rd is held
    svc.tick()
    client.poll(0.05)
    assert len(client.replies) == 2 and not client.errors
    svc.on_freeze(_freeze_msg("a", False))
    assert [b.text for _, b in client.replies] == ["call the FBI", "FBI again", "the fbi!"]
    svc.on_complete(_msg("a"))  # counting starts afresh after the thaw: no new trip
    provider.release("a")
    _settle(client, lambda: len(client.replies) == 4)
    assert len([b for d, b in client.sent if isinstance(b, m.BreakerTripped)]) == 1


def test_held_answer_is_dropped_after_its_deadline():
    """A tripping answer still held when the caller's deadline passes is dropped, not delivered at a thaw."""
    now = [1000.0]
    svc, client, _ = _trip(["FBI", "FBI", "FBI"], deadline=1010.0, wall=lambda: now[0])
    now[0] = 1011.0
    svc.tick()
    svc.on_freeze(_freeze_msg("a", False))
    assert len(client.replies) == 2 and not client.errors


def test_held_answer_gets_stopped_when_the_gateway_stops():
    """A gateway that stops answers a held tripping answer's caller with ``stopped``."""
    svc, client, _ = _trip(["FBI", "FBI", "FBI"])
    svc.stop_accepting()
    assert len(client.replies) == 2
    assert [type(e) for _, e in client.errors] == [Stopped]


TP = "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"


def test_model_call_span_is_a_child_of_the_callers_span_with_genai_attributes():
    """A completed call sends the supervisor one 'chat' span under the request's traceparent, with its tokens."""
    provider = GatedProvider()
    svc, client = _service(provider)
    body = m.Complete("a", "p" * 40, ["task_complete"], 64, [], "a", {})
    msg = Message(make_header(Kind.REQUEST, body.TYPE, "a", "gateway", traceparent=TP), body)
    svc.on_complete(msg)
    provider.release("a")
    _settle(client, lambda: client.spans())
    (span,) = client.spans()
    trace_id, _, parent, name, agent, start, end, attrs = span
    assert (trace_id, parent, agent) == ("ab" * 16, "cd" * 8, "a") and end >= start > 0
    assert name.startswith("chat ") and attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.usage.input_tokens"] == 10 and attrs["gen_ai.usage.output_tokens"] == 5
    assert attrs["swarm.agent.id"] == "a" and attrs["gen_ai.request.model"]


def test_failed_model_call_span_records_the_error_type():
    """A provider error ends the call's span with error.type set to the error's code."""
    provider = GatedProvider()
    provider.fail = ProviderError("down")
    svc, client = _service(provider)
    svc.on_complete(_msg("a"))
    provider.release("a")
    _settle(client, lambda: client.spans())
    assert client.spans()[0][7]["error.type"] == "provider_error"
