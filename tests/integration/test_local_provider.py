"""The local provider (Gemma 3 270M in-process): answers parse and name the role's commands only."""

from __future__ import annotations

import json

import pytest

from agents.parse import parse_decision
from agents.prompt import PromptInput, build_prompt
from orchestrator.config import LLM
from orchestrator.gateway import schema
from orchestrator.gateway.providers.base import Request
from swarm_core import messages as m
from swarm_core.catalog import CATALOG
from tests.gateway_harness import GatewayRig, llama_available, wait_until

pytestmark = [
    pytest.mark.llama,
    pytest.mark.slow,
    pytest.mark.timeout(900),
    pytest.mark.skipif(not llama_available(),
                       reason="llama-cpp-python is not installed (pip install -e '.[local]')"),
]

ROLES = {
    "manager": dict(role="a manager. You start a writer, wait for its result, then finish.",
                    task="Write a short poem about the sea into poem.txt",
                    commands=["start_agent", "do_nothing", "task_complete"], can_start=["writer"]),
    "researcher": dict(role="a researcher. You read files and remember what matters.",
                       task="Read notes.txt and remember its main point",
                       commands=["read_file", "memory_add", "search_files", "task_complete"], can_start=[]),
}


class NullLog:
    def __getattr__(self, name):
        return lambda *a, **k: None


@pytest.fixture(scope="module")
def provider():
    from orchestrator.gateway.providers.local import LocalProvider

    p = LocalProvider(LLM(provider="local"), NullLog())
    try:
        yield p
    finally:
        p.close()


def _request(name: str, history: list[dict], inbox: list[str] | None = None) -> Request:
    r = ROLES[name]
    prompt, context = build_prompt(PromptInput(
        name=name, role=r["role"], task=r["task"], goals=[], commands=r["commands"],
        can_start=r["can_start"], history=history, inbox=inbox or []))
    return Request(name, prompt, tuple(r["commands"]), 200, (), name, context)


@pytest.mark.parametrize("role", sorted(ROLES))
def test_answers_parse_and_use_only_the_roles_commands(provider, role):
    """Over three steps every answer parses, names an allowed command and has exactly its argument names."""
    allowed = ROLES[role]["commands"]
    full = schema.answer_schema(allowed)
    history: list[dict] = []
    for step in range(3):
        res = provider.complete(_request(role, history))
        answer = json.loads(res.text, strict=False)
        assert schema.validate(answer, full) == [], res.text
        decision = parse_decision(res.text)
        assert decision.command in allowed
        cmd = CATALOG.get(decision.command)
        assert set(decision.args) <= set(cmd.arg_names) and set(cmd.required) <= set(decision.args)
        if decision.command == "start_agent":
            assert decision.args["name"] == "writer"  # the only role it may start
        assert res.prompt_tokens > 0 and res.completion_tokens > 0
        history.append({"command": decision.command, "args": decision.args, "result": "ok"})


def test_local_provider_through_the_gateway_queues_the_second_agent(tmp_path):
    """Through the gateway process two agents' local calls run one at a time: the second shows waiting."""
    rig = GatewayRig(tmp_path)
    try:
        rig.start(llm={"provider": "local"})
        sup = rig.supervisor()
        clients = {n: rig.client(n) for n in ROLES}
        replies: dict[str, object] = {}
        for name, c in clients.items():
            req = _request(name, [])
            c.send_request("gateway", m.Complete(name, req.prompt, list(req.commands), 200, [], name,
                                                 req.context), 600,
                           lambda msg, n=name: replies.__setitem__(n, msg))
        wait_until(lambda: len(replies) == 2, 600, "both local answers",
                   pump=lambda: [c.poll(0.01) for c in clients.values()])
        for name, msg in replies.items():
            assert isinstance(msg.body, m.Completion), msg.body
            assert parse_decision(msg.body.text).command in ROLES[name]["commands"]
        statuses = [u.status for u in sup.usage]
        assert "waiting" in statuses and "running" in statuses
        assert "Gemma is provided under and subject to the Gemma Terms of Use" in rig.output()
        assert rig.log_events("gemma_notice")
    finally:
        rig.close()
