"""The openai provider against real HTTP on 127.0.0.1: clear errors, retries with Retry-After, fallbacks.

A scripted OpenAI-compatible HTTP server (a real socket, answering what each
test queues) plays the upstream, so 401/404/429/5xx and 400 on
``response_format`` can be produced on demand; closed ports give real
refused connections. The provider's sleep is a recording port, so backoff is
checked without waiting.
"""

from __future__ import annotations

import socket
import time

import pytest

from orchestrator.config import LLM
from orchestrator.gateway import schema
from orchestrator.gateway.providers.base import Request
from orchestrator.gateway.providers.openai import USER_TURN, OpenAIProvider
from swarm_core.errors import ProviderError
from tests.gateway_harness import Upstream, upstream_error

pytestmark = pytest.mark.timeout(60)


class NullLog:
    def __getattr__(self, name):
        return lambda *a, **k: None


@pytest.fixture
def upstream():
    u = Upstream()
    try:
        yield u
    finally:
        u.close()


class Sleeps:
    def __init__(self):
        self.calls = []

    def __call__(self, s):
        self.calls.append(s)


def _provider(base_url, env=None, sleep=None, **llm):
    cfg = LLM(provider="openai", base_url=base_url, **{"max_retries": 0, **llm})
    return OpenAIProvider(cfg, NullLog(), env=env if env is not None else {}, sleep=sleep or Sleeps())


def _req(commands=("task_complete",), messages=(), deadline=0.0, max_tokens=32):
    return Request("a", "You are agent a. Answer in JSON.", tuple(commands), max_tokens, tuple(messages),
                   "a", {}, deadline)


def _closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_missing_key_names_the_variable():
    """With no base_url and no key, the error names the environment variable to set."""
    with pytest.raises(ProviderError) as err:
        OpenAIProvider(LLM(provider="openai", api_key_env="MY_KEY"), NullLog(), env={})
    assert "MY_KEY" in err.value.message and "\n" not in err.value.message


def test_refused_connection_is_one_clear_line():
    """A closed port on 127.0.0.1 is reported as a refused connection, without a traceback."""
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    with pytest.raises(ProviderError) as err:
        _provider(url, model="m").complete(_req())
    assert err.value.message == f"openai: cannot connect to {url} (connection refused)"


def test_refused_connection_is_retried_with_backoff():
    """Connection failures are retried max_retries times with growing waits, then reported."""
    sleeps = Sleeps()
    with pytest.raises(ProviderError, match="connection refused"):
        _provider(f"http://127.0.0.1:{_closed_port()}/v1", sleep=sleeps, model="m",
                  max_retries=3).complete(_req())
    assert len(sleeps.calls) == 3
    assert sleeps.calls[0] < sleeps.calls[1] < sleeps.calls[2]


def test_unknown_model_is_a_clear_404(upstream):
    """A 404 for the model names the model and the server."""
    upstream.push(*upstream_error(404, "The model `nope` does not exist", "model_not_found"))
    with pytest.raises(ProviderError) as err:
        _provider(upstream.url, model="nope").complete(_req(commands=()))
    assert err.value.message.startswith(f"openai: model 'nope' not found at {upstream.url} (404)")
    assert "does not exist" in err.value.message


def test_refused_key_names_the_variable(upstream):
    """A 401 says the server refused the key taken from the named variable."""
    upstream.push(401, {}, {"error": {"message": "Incorrect API key provided"}})
    with pytest.raises(ProviderError, match=r"refused the API key from OPENAI_API_KEY \(401\)"):
        _provider(upstream.url, model="m").complete(_req())


def test_429_is_retried_after_the_servers_retry_after(upstream):
    """A 429 with Retry-After waits exactly that long, then the call succeeds."""
    upstream.push(429, {"Retry-After": "2"}, {"error": {"message": "slow down"}})
    sleeps = Sleeps()
    res = _provider(upstream.url, sleep=sleeps, model="m", max_retries=2).complete(_req())
    assert sleeps.calls == [2.0]
    assert (res.text, res.prompt_tokens, res.completion_tokens, res.model) == ("hello", 11, 7, "served-model")
    assert len(upstream.posts()) == 2


def test_5xx_is_retried_then_reported(upstream):
    """Server errors are retried max_retries times, then reported with the status."""
    for _ in range(3):
        upstream.push(503, {}, {"error": {"message": "overloaded"}})
    sleeps = Sleeps()
    with pytest.raises(ProviderError, match=r"answered 503: overloaded"):
        _provider(upstream.url, sleep=sleeps, model="m", max_retries=2).complete(_req())
    assert len(sleeps.calls) == 2 and len(upstream.posts()) == 3


def test_bad_request_is_not_retried(upstream):
    """A 400 unrelated to response_format is reported at once, not retried."""
    upstream.push(400, {}, {"error": {"message": "max_tokens is too large"}})
    sleeps = Sleeps()
    with pytest.raises(ProviderError, match="answered 400: max_tokens is too large"):
        _provider(upstream.url, sleep=sleeps, model="m", max_retries=3).complete(_req(commands=()))
    assert sleeps.calls == []


def test_seed_style_messages_and_response_format_are_sent(upstream):
    """Without messages the prompt is the system turn plus the seed's user turn, with the answer schema."""
    _provider(upstream.url, env={"OPENAI_API_KEY": "sk-secret"}, model="m").complete(
        _req(commands=("write_to_file", "task_complete")))
    _, path, headers, body = upstream.posts()[0]
    assert path == "/v1/chat/completions"
    assert headers["authorization"] == "Bearer sk-secret"
    assert body["messages"] == [{"role": "system", "content": "You are agent a. Answer in JSON."},
                                {"role": "user", "content": USER_TURN}]
    assert body["model"] == "m" and body["max_tokens"] == 32
    assert body["response_format"] == {"type": "json_object",
                                       "schema": schema.answer_schema(["write_to_file", "task_complete"],
                                                                      thought_max_len=20)}


def test_given_messages_are_sent_as_they_are(upstream):
    """Complete.messages replace the seed pair."""
    msgs = ({"role": "system", "content": "s"}, {"role": "user", "content": "u"})
    _provider(upstream.url, model="m").complete(_req(messages=msgs))
    assert upstream.posts()[0][3]["messages"] == list(msgs)


def test_response_format_refused_falls_back_once_and_for_all(upstream):
    """A 400 to response_format is asked again without it, and later calls leave it out."""
    upstream.push(400, {}, {"error": {"message": "Unrecognized request argument: schema"}})
    p = _provider(upstream.url, model="m")
    assert p.complete(_req()).text == "hello"
    p.complete(_req())
    sent = [r[3] for r in upstream.posts()]
    assert "response_format" in sent[0]
    assert "response_format" not in sent[1] and "response_format" not in sent[2]


def test_no_key_with_a_base_url_uses_a_placeholder(upstream):
    """A local server needs no key: a placeholder is sent instead of failing."""
    _provider(upstream.url, env={}, model="m").complete(_req())
    assert upstream.posts()[0][2]["authorization"] == "Bearer sk-no-key-needed"


def test_model_defaults_to_the_first_the_server_lists(upstream):
    """Without llm.model a compatible server's first listed model is used."""
    p = _provider(upstream.url)
    p.complete(_req())
    p.complete(_req())
    assert [r[0] for r in upstream.requests] == ["GET", "POST", "POST"]
    assert upstream.posts()[0][3]["model"] == "first-model"


def test_slow_server_times_out_clearly(upstream):
    """A server slower than llm.timeout gives a one-line timeout error (not retried)."""
    upstream.push(200, delay=3.0)
    with pytest.raises(ProviderError, match="did not answer in time"):
        _provider(upstream.url, model="m", timeout=0.3, max_retries=3).complete(_req())
    assert len(upstream.posts()) == 1


def test_passed_deadline_fails_without_calling(upstream):
    """A request whose caller's deadline has passed is not sent upstream."""
    with pytest.raises(ProviderError, match="deadline passed"):
        _provider(upstream.url, model="m").complete(_req(deadline=time.time() - 1))
    assert upstream.posts() == []


def test_retry_wait_never_outlives_the_deadline(upstream):
    """A Retry-After longer than the time left ends the call at once with the upstream's error."""
    upstream.push(429, {"Retry-After": "30"}, {"error": {"message": "slow down"}})
    sleeps = Sleeps()
    with pytest.raises(ProviderError, match="answered 429"):
        _provider(upstream.url, sleep=sleeps, model="m", max_retries=3).complete(
            _req(deadline=time.time() + 5))
    assert sleeps.calls == []


def test_azure_base_url_uses_the_azure_client(upstream):
    """A base_url containing 'azure' calls the deployment path with the api-key header."""
    url = upstream.url.replace("/v1", "/azure")
    _provider(url, env={"OPENAI_API_KEY": "az-key"}, model="my-deploy").complete(_req())
    _, path, headers, _ = upstream.posts()[0]
    assert path.startswith("/azure/openai/deployments/my-deploy/chat/completions?api-version=")
    assert headers["api-key"] == "az-key"
