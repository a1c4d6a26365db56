"""The local provider (Gemma 3 270M in-process): answers parse and name the role's commands only."""

from __future__ import annotations

import json
import re

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
    """Over three steps every answer parses and names an allowed command, before exactly its arguments."""
    allowed = ROLES[role]["commands"]
    full = schema.answer_schema(allowed)
    history: list[dict] = []
    for step in range(3):
        res = provider.complete(_request(role, history))
        answer = json.loads(res.text, strict=False)
        assert schema.validate(answer, full) == [], res.text
        assert list(answer["command"]) == ["name", "args"], res.text  # the model chose, then filled in
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


@pytest.fixture(scope="module")
def llamas():
    """The stock llama_cpp.Llama and our GrammarFirstLlama on the same weights."""
    import llama_cpp

    from orchestrator.gateway.model_files import gemma_path
    from orchestrator.gateway.providers.local_sampling import GrammarFirstLlama

    kw = dict(model_path=str(gemma_path()), n_ctx=2048, n_threads=1, n_threads_batch=1, verbose=False)
    stock, first = llama_cpp.Llama(**kw), GrammarFirstLlama(**kw)
    try:
        yield stock, first
    finally:
        stock.close()
        first.close()


@pytest.mark.parametrize("role,history", [("manager", []), ("researcher", []),
                                          ("manager", [{"command": "start_agent", "args": {}, "result": "ok"}])])
def test_grammar_first_sampling_answers_like_the_stock_sampler_when_greedy(llamas, role, history):
    """At temperature 0 checking the grammar lazily picks exactly the tokens the stock sampler picks."""
    from llama_cpp import LlamaGrammar

    from orchestrator.gateway import fewshot

    req = _request(role, history)
    can = req.context["can_start"]
    compact = schema.compact_schema(req.commands, choices={"start_agent": {"name": can}} if can else None)
    grammar = LlamaGrammar.from_json_schema(json.dumps(compact), verbose=False)
    prompt = fewshot.build_prompt(req.context, req.commands)
    texts = [m.create_completion(prompt, max_tokens=120, temperature=0.0, repeat_penalty=1.15,
                                 grammar=grammar)["choices"][0]["text"] for m in llamas]
    assert texts[0] == texts[1]
    assert schema.validate(json.loads(texts[1], strict=False), compact) == []


def test_grammar_first_sampling_holds_to_a_grammar_the_model_would_not_follow(llamas):
    """Prose-inviting prompt, digits-only grammar, warm sampling: every answer is still the grammar's."""
    from llama_cpp import LlamaGrammar

    grammar = LlamaGrammar.from_json_schema(json.dumps({"type": "string", "pattern": "^[0-9]{3}-[a-c]{2}$"}),
                                            verbose=False)
    _, first = llamas
    for seed in range(3):
        text = first.create_completion("Once upon a time, in a land far away,", max_tokens=40,
                                       temperature=1.0, seed=seed, grammar=grammar)["choices"][0]["text"]
        assert re.fullmatch(r'"[0-9]{3}-[a-c]{2}" ?', text), text


class EventLog:
    """A logger that keeps the events' names."""

    def __init__(self):
        self.events = []

    def __getattr__(self, level):
        return lambda event, **fields: self.events.append(event)


@pytest.mark.parametrize("own_path", [True, False])
def test_the_gemma_notice_comes_only_with_the_packaged_weights(tmp_path, capfd, own_path):
    """With llm.model_path naming a model file no notice is logged or printed; with the packaged weights it is."""
    from orchestrator.gateway.model_files import GEMMA_NOTICE, gemma_path
    from orchestrator.gateway.providers.local import LocalProvider

    other = tmp_path / "other-model.gguf"
    other.symlink_to(gemma_path())  # any GGUF file of the user's: here the same bytes under another name
    log = EventLog()
    p = LocalProvider(LLM(provider="local", model_path=str(other) if own_path else None, seed=1), log)
    try:
        p.complete(_request("manager", []))
    finally:
        p.close()
    assert ("gemma_notice" in log.events) is not own_path
    assert (GEMMA_NOTICE in capfd.readouterr().err) is not own_path
    assert "local_completion" in log.events
