"""The gateway process end to end: a real broker, the real gateway process on replay, bus peers as agents."""

from __future__ import annotations

import json
import signal
import threading
import time

import pytest

from bus import messages as bm
from swarm_core import messages as m
from swarm_core.errors import (
    CassetteExhausted,
    DeadlineExceeded,
    InvalidRequest,
    PolicyDenied,
    ProviderError,
    QuotaExhausted,
    Stopped,
)
from tests.gateway_harness import (
    Upstream,
    complete,
    free_port,
    stop_process,
    upstream_completion,
    wait_until,
)

pytestmark = pytest.mark.timeout(120)

DONE = {"thoughts": {"text": "done"}, "command": {"name": "task_complete", "args": {"reason": "ok"}}}


class Pending:
    """One agent's request sent without waiting; the reply (or error) lands here."""

    def __init__(self, client, body, timeout=30.0):
        self.client = client
        self.reply = None
        self.sent = time.monotonic()
        self.answered_at = None
        client.send_request("gateway", body, timeout, self._on_reply)

    def _on_reply(self, msg):
        self.reply = msg
        self.answered_at = time.monotonic()

    def wait(self, timeout=30.0, what="the reply"):
        return wait_until(lambda: self.reply, timeout, what, pump=lambda: self.client.poll(0.01))

    @property
    def body(self):
        return self.reply.body if self.reply is not None else None


def test_completion_via_replay_and_usage_to_supervisor(rig):
    """A replay answer comes back as a Completion and the supervisor gets the agent's usage totals."""
    rig.start(cassette={"a": [DONE, "not json {"]})
    sup = rig.supervisor()
    agent = rig.client("a")
    first = agent.request("gateway", complete("a", prompt="x" * 400), 10)
    assert isinstance(first, m.Completion)
    assert json.loads(first.text) == DONE
    assert first.prompt_tokens == 100 and first.completion_tokens > 0 and first.model == "replay"
    second = agent.request("gateway", complete("a"), 10)
    assert second.text == "not json {"
    usage = wait_until(lambda: [u for u in sup.of("a") if u.requests == 2], 10, "usage after two calls")
    assert usage[-1].tokens == first.prompt_tokens + first.completion_tokens + \
        second.prompt_tokens + second.completion_tokens
    assert usage[-1].status == "" and usage[-1].stop_reason == ""


def test_rate_limited_third_call_waits_throttled_then_completes(rig):
    """With 2 requests per minute the third call is held (Usage throttled), released after the pause."""
    rig.start(cassette={"a": {"responses": [DONE], "repeat": True}},
              quotas={"agent": {"requests_per_minute": 2}, "pause_seconds": 0.5})
    sup = rig.supervisor()
    agent = rig.client("a")
    for _ in range(2):
        agent.request("gateway", complete("a"), 10)
    third = agent.request("gateway", complete("a"), 10)
    assert json.loads(third.text) == DONE
    statuses = [u.status for u in wait_until(lambda: [u for u in sup.of("a") if u.requests == 3]
                                             and sup.of("a"), 10, "usage of the third call")]
    assert "throttled" in statuses
    assert statuses.index("throttled") < statuses.index("running")
    held = rig.log_events("call_throttled")
    assert held and held[0]["agent"] == "a" and held[0]["bucket"] == "agent requests_per_minute"
    assert rig.log_events("call_released_after_pause")


def test_throttled_call_stays_held_within_the_pause(rig):
    """A call over the rate with a long pause gets no reply while held; another agent is not held."""
    rig.start(cassette={"a": {"responses": [DONE], "repeat": True}, "b": [DONE]},
              quotas={"agent": {"requests_per_minute": 1}, "pause_seconds": 60})
    sup = rig.supervisor()
    a = rig.client("a")
    a.request("gateway", complete("a"), 10)
    held = Pending(a, complete("a"), timeout=30)
    wait_until(lambda: [u for u in sup.of("a") if u.status == "throttled"], 10, "a throttled",
               pump=lambda: a.poll(0.01))
    b = rig.client("b")
    assert json.loads(b.request("gateway", complete("b"), 10).text) == DONE
    a.poll(0.05)
    assert held.reply is None  # still held: the bucket refills in 60 s


def test_token_budget_stops_an_agent(rig):
    """on_exhausted kill: a call the budget cannot cover fails budget_exhausted and the supervisor is told."""
    rig.start(cassette={"a": {"responses": [DONE], "repeat": True}, "b": [DONE]},
              quotas={"agent": {"max_tokens": 200}, "on_exhausted": "kill"})
    sup = rig.supervisor()
    agent = rig.client("a")
    first = agent.request("gateway", complete("a", prompt="y" * 400), 10)  # worst 100 + 64 fits 200
    with pytest.raises(QuotaExhausted, match="max_tokens budget of 200 cannot cover this call"):
        agent.request("gateway", complete("a", prompt="y" * 400), 10)  # spent + 164 would not
    wait_until(lambda: [u for u in sup.of("a") if u.stop_reason == "budget_exhausted" and u.requests == 1], 10,
               "the stop reason after the refused call")
    assert first.prompt_tokens + first.completion_tokens <= 200
    b = rig.client("b")
    assert json.loads(b.request("gateway", complete("b"), 10).text) == DONE  # others go on


def test_token_budget_pauses_an_agent_by_default(rig):
    """on_exhausted pause (default): the call is held, not failed, and the supervisor hears whose budget."""
    rig.start(cassette={"a": {"responses": [DONE], "repeat": True}}, quotas={"agent": {"max_tokens": 200}})
    sup = rig.supervisor()
    agent = rig.client("a")
    agent.request("gateway", complete("a", prompt="y" * 400), 10)
    held = Pending(agent, complete("a", prompt="y" * 400))
    notes = wait_until(lambda: list(sup.exhausted), 10, "BudgetExhausted", pump=lambda: agent.poll(0.01))
    assert (notes[0].agent_id, notes[0].budget_of) == ("a", "a")
    agent.poll(0.05)
    assert held.reply is None


def test_freeze_holds_a_call_and_thaw_releases_it(rig):
    """A frozen agent's call is held (not failed) until the supervisor thaws the agent."""
    rig.start(cassette={"a": [DONE], "b": [DONE]})
    sup = rig.supervisor()
    sup.send(m.Freeze("a", True, "test"))
    wait_until(lambda: rig.log_events("freeze"), 10, "the gateway to apply the freeze")
    agent = rig.client("a")
    pending = Pending(agent, complete("a"))
    wait_until(lambda: rig.log_events("call_frozen"), 10, "the call to be held frozen",
               pump=lambda: agent.poll(0.01))
    agent.poll(0.05)
    assert pending.reply is None
    b = rig.client("b")
    assert json.loads(b.request("gateway", complete("b"), 10).text) == DONE  # b is not frozen
    sup.send(m.Freeze("a", False, "test"))
    assert json.loads(pending.wait().body.text) == DONE


def test_freeze_all_holds_every_agent(rig):
    """Freeze with an empty agent id holds every agent's calls; thaw all releases them."""
    rig.start(cassette={"a": [DONE], "b": [DONE]})
    sup = rig.supervisor()
    sup.send(m.Freeze("", True, "all"))
    wait_until(lambda: rig.log_events("freeze"), 10, "the freeze")
    a, b = rig.client("a"), rig.client("b")
    pa, pb = Pending(a, complete("a")), Pending(b, complete("b"))
    wait_until(lambda: len(rig.log_events("call_frozen")) == 2, 10, "both calls held",
               pump=lambda: (a.poll(0.005), b.poll(0.005)))
    sup.send(m.Freeze("", False, "all"))
    pa.wait()
    pb.wait()


def test_slow_call_of_one_agent_does_not_block_another(rig):
    """Two agents' calls run concurrently: b's quick answer arrives while a's slow one is pending."""
    rig.start(cassette={"a": [{**DONE, "delay_s": 30}], "b": [DONE]})
    a, b = rig.client("a"), rig.client("b")
    slow = Pending(a, complete("a"), timeout=60)
    wait_until(lambda: rig.broker.routed >= 1, 10, "a's request routed", pump=lambda: a.poll(0.01))
    quick = b.request("gateway", complete("b"), 10)
    assert json.loads(quick.text) == DONE
    a.poll(0.01)
    assert slow.reply is None


def test_bad_requests_get_error_replies_and_the_gateway_keeps_running(rig):
    """Invalid requests, unknown agents and spoofed control messages are refused; service goes on."""
    proc = rig.start(cassette={"a": [DONE]})
    rig.supervisor()
    intruder = rig.client("intruder")
    with pytest.raises(InvalidRequest, match="max_tokens"):
        intruder.request("gateway", complete("intruder", max_tokens=0), 10)
    with pytest.raises(InvalidRequest, match="prompt or messages"):
        intruder.request("gateway", complete("intruder", prompt=""), 10)
    with pytest.raises(CassetteExhausted, match="no responses for agent 'intruder'"):
        intruder.request("gateway", complete("intruder"), 10)
    with pytest.raises(PolicyDenied, match="freeze from the agent intruder refused"):
        intruder.request("gateway", m.Freeze("a", True, "spoof"), 10)
    with pytest.raises(PolicyDenied, match="stop from the agent intruder refused: only the supervisor"):
        intruder.request("gateway", m.Stop("spoof"), 10)
    with pytest.raises(Exception, match="does not handle"):
        intruder.request("gateway", bm.Ping(b"x"), 10)
    a = rig.client("a")
    assert json.loads(a.request("gateway", complete("a"), 10).text) == DONE
    with pytest.raises(CassetteExhausted, match="ran out of responses for agent 'a' after 1"):
        a.request("gateway", complete("a"), 10)
    assert proc.poll() is None


def test_a_call_claiming_another_agent_is_refused_and_counted_for_nobody(rig):
    """A body claiming another agent's id is refused (the rule named); nothing is served or counted."""
    rig.start(cassette={"a": [DONE], "b": ["b's answer"]})
    sup = rig.supervisor()
    b = rig.client("b")
    with pytest.raises(PolicyDenied, match="acts only for itself, not for 'a'"):
        b.request("gateway", m.Complete("a", "p", ["task_complete"], 64, [], "", {}), 10)
    own = m.Complete("b", "p", ["task_complete"], 64, [], "", {})
    assert b.request("gateway", own, 10).text == "b's answer"
    wait_until(lambda: sup.of("b"), 10, "usage counted for b")
    assert not sup.of("a") and rig.log_events("authorization_denied")[0]["peer"] == "b"


def test_held_call_past_its_deadline_is_dropped_without_a_reply(rig):
    """A frozen call whose caller gave up is dropped (logged), not answered after the deadline."""
    rig.start(cassette={"a": [DONE, DONE]})
    sup = rig.supervisor()
    sup.send(m.Freeze("a", True, "test"))
    wait_until(lambda: rig.log_events("freeze"), 10, "the freeze")
    a = rig.client("a")
    gone = Pending(a, complete("a"), timeout=0.5)
    wait_until(lambda: rig.log_events("call_abandoned"), 10, "the expired call to be dropped",
               pump=lambda: a.poll(0.01))
    sup.send(m.Freeze("a", False, "test"))
    assert json.loads(a.request("gateway", complete("a"), 10).text) == DONE  # the cassette's first answer
    # the only answer it ever gets is the client's own deadline notice, not the gateway's
    gone.wait(what="the client's deadline notice")
    assert gone.reply.header.src == "a" and gone.body.code == DeadlineExceeded.code


def test_stop_from_the_supervisor_ends_the_process_cleanly(rig):
    """Stop from the supervisor makes the gateway exit 0; a held call is answered 'stopped'."""
    proc = rig.start(cassette={"a": [DONE]})
    sup = rig.supervisor()
    sup.send(m.Freeze("a", True, "test"))
    wait_until(lambda: rig.log_events("freeze"), 10, "the freeze")
    a = rig.client("a")
    held = Pending(a, complete("a"))
    wait_until(lambda: rig.log_events("call_frozen"), 10, "the held call", pump=lambda: a.poll(0.01))
    sup.send(m.Stop("test over"))
    held.wait(what="the stopped reply")
    assert held.reply.body.code == Stopped.code
    assert wait_until(lambda: proc.poll() is not None, 15, "the gateway to exit") and proc.returncode == 0
    assert rig.log_events("gateway_stopped")[-1]["reason"] == "test over"


def test_sigterm_stops_gracefully(rig):
    """SIGTERM is recorded by the handler and the loop stops the gateway with exit status 0."""
    proc = rig.start(cassette={"a": [DONE]})
    proc.send_signal(signal.SIGTERM)
    assert wait_until(lambda: proc.poll() is not None, 15, "exit after SIGTERM") and proc.returncode == 0
    assert rig.log_events("gateway_stopped")[-1]["reason"] == "sigterm"


def test_bad_cassette_is_one_line_on_stderr_and_exit_2(rig):
    """A malformed cassette stops the gateway at start with a one-line error naming the file."""
    (rig.tmp / "cassette.yaml").write_text("a: 3\n")
    cfg = rig.tmp / "swarm.yaml"
    import yaml

    from tests.gateway_harness import swarm_yaml
    cfg.write_text(yaml.safe_dump(swarm_yaml({"provider": "replay", "cassette": "cassette.yaml"})))
    proc = rig.launch(cfg)
    assert proc.wait(30) == 2
    out = rig.output().strip().splitlines()
    assert len(out) == 1 and "cassette.yaml" in out[0] and "expected a list of responses" in out[0]
    assert "Traceback" not in rig.output()


def test_openai_without_a_key_is_one_line_and_exit_7(rig):
    """The openai provider with no key and no base_url refuses to start, saying which variable to set."""
    proc = rig.launch(rig.write_config({"provider": "openai", "api_key_env": "SWARM_TEST_NO_SUCH_KEY"}))
    assert proc.wait(30) == 7
    out = rig.output().strip().splitlines()
    assert len(out) == 1 and "SWARM_TEST_NO_SUCH_KEY" in out[0]


def test_refused_openai_server_is_a_clear_error_to_the_agent(rig):
    """A base_url nobody listens on gives the agent a one-line provider_error; the gateway goes on."""
    proc = rig.start(llm={"provider": "openai", "base_url": f"http://127.0.0.1:{free_port()}/v1",
                          "model": "m", "max_retries": 0})
    agent = rig.client("a")
    with pytest.raises(ProviderError,
                       match=r"^openai: cannot connect to http://127\.0\.0\.1:\d+/v1 \(connection refused\)$"):
        agent.request("gateway", complete("a"), 30)
    assert proc.poll() is None


def test_record_mode_writes_a_cassette_that_replays_the_run(rig, tmp_path):
    """A gateway in record mode over an OpenAI-compatible server writes a cassette a replay gateway plays back."""
    answers = [json.dumps(DONE), "plain text, verbatim", json.dumps({"command": {"name": "do_nothing", "args": {}}})]
    cassette = tmp_path / "recorded.yaml"
    upstream = Upstream()
    try:
        for text in answers:
            upstream.push(200, body=upstream_completion(text=text))
        proc = rig.start(llm={"provider": "record", "record_provider": "openai", "base_url": upstream.url,
                              "model": "m", "max_retries": 0, "record_to": str(cassette)})
        a = rig.client("a")
        assert [a.request("gateway", complete("a"), 10).text for _ in answers] == answers
    finally:
        upstream.close()
    stop_process(proc)
    wait_until(lambda: "gateway" not in rig.broker.peers(), 10, "the recording gateway to leave")
    rig.start(llm={"provider": "replay", "cassette": str(cassette)})
    assert [a.request("gateway", complete("a"), 10).text for _ in answers] == answers
    with pytest.raises(CassetteExhausted):
        a.request("gateway", complete("a"), 10)


def test_many_concurrent_calls_are_all_answered(rig):
    """Many agents calling at once each get their own answers, none lost."""
    agents = [f"ag{i}" for i in range(8)]
    rig.start(cassette={a: [f"{a}-1", f"{a}-2", f"{a}-3"] for a in agents})
    results: dict[str, list[str]] = {}
    errors: list[BaseException] = []
    clients = {a: rig.client(a) for a in agents}

    def run(a):
        try:
            results[a] = [clients[a].request("gateway", complete(a), 20).text for _ in range(3)]
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(a,)) for a in agents]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert results == {a: [f"{a}-1", f"{a}-2", f"{a}-3"] for a in agents}
