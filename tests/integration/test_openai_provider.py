"""The openai provider for real: the gateway process against ``python -m llama_cpp.server`` with Gemma."""

from __future__ import annotations

import json

import pytest

from agents.parse import parse_decision
from agents.prompt import PromptInput, build_prompt
from orchestrator.gateway import schema
from swarm_core import messages as m
from tests.gateway_harness import llama_available, start_llama_server, stop_process, wait_until

pytestmark = [
    pytest.mark.llama,
    pytest.mark.slow,
    pytest.mark.timeout(900),
    pytest.mark.skipif(not llama_available(),
                       reason="llama-cpp-python is not installed (pip install -e '.[local]')"),
]

WRITER = ["write_to_file", "read_file", "task_complete"]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    from orchestrator.gateway.model_files import gemma_path

    log = tmp_path_factory.mktemp("llama") / "server.log"
    proc, url = start_llama_server(gemma_path(), log)
    try:
        yield url
    finally:
        stop_process(proc)


def test_agent_steps_through_the_gateway_on_an_openai_compatible_server(rig, llama_server):
    """Three agent steps through gateway + openai provider + llama.cpp server all parse as commands."""
    rig.start(llm={"provider": "openai", "base_url": llama_server, "max_retries": 1, "timeout": 300,
                   "temperature": 0.2})
    sup = rig.supervisor()
    agent = rig.client("writer")
    history: list[dict] = []
    full = schema.answer_schema(WRITER)
    for step in range(3):
        prompt, context = build_prompt(PromptInput(
            name="writer", role="a writer. You write what you are asked into a file, then finish.",
            task="Write a haiku about the sea into haiku.txt", goals=[], commands=WRITER, history=history))
        reply = agent.request("gateway", m.Complete("writer", prompt, WRITER, 400, [], "writer", context), 600)
        assert isinstance(reply, m.Completion)
        assert reply.prompt_tokens > 100 and reply.completion_tokens > 0  # counted by the server
        assert reply.model.endswith(".gguf")
        answer = json.loads(reply.text, strict=False)  # the grammar made it JSON
        assert schema.validate(answer, full) == []
        decision = parse_decision(reply.text)
        assert decision.command in WRITER
        history.append({"command": decision.command, "args": decision.args, "result": "ok"})
    usage = wait_until(lambda: [u for u in sup.of("writer") if u.requests == 3], 30, "usage of 3 calls")
    assert usage[-1].tokens > 300

