"""The local model's completion prompt: worked examples of the role's commands, closest state last."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

from orchestrator.config import load_config
from orchestrator.gateway import fewshot, schema
from swarm_core.catalog import CATALOG, delegation

ROOT = Path(__file__).resolve().parents[2]

WRITER = ["write_to_file", "read_file", "task_complete"]
MANAGER = ["start_agent", "do_nothing", "task_complete"]


def _ctx(**kw):
    base = {"name": "w", "role": "a writer", "task": "Write a haiku into sea.txt", "goals": [],
            "history": [], "inbox": []}
    return {**base, **kw}


def _answers(prompt):
    return [json.loads(line[len("Answer: "):]) for line in prompt.splitlines()
            if line.startswith("Answer: {")]


def test_prompt_ends_with_the_agents_situation():
    """The prompt ends with our agent's task, commands and an open Answer."""
    p = fewshot.build_prompt(_ctx(), WRITER)
    tail = p[p.rindex("Now:"):]
    assert "Task: Write a haiku into sea.txt" in tail
    assert "Commands: write_to_file(file, text), read_file(file), task_complete(reason)" in tail
    assert p.endswith("Answer: ")


def test_examples_use_only_allowed_commands_in_the_short_format():
    """Every worked answer names an allowed command and matches the short schema."""
    for commands in (WRITER, MANAGER, ["read_file", "task_complete"]):
        answers = _answers(fewshot.build_prompt(_ctx(), commands))
        assert answers
        compact = schema.compact_schema(commands)
        for a in answers:
            assert a["command"]["name"] in commands
            assert schema.validate(a, compact) == []


def test_example_closest_to_the_state_comes_last():
    """With nothing done the last example is a first step; after work it is task_complete."""
    first = _answers(fewshot.build_prompt(_ctx(), WRITER))[-1]
    assert first["command"]["name"] != "task_complete"
    done = _ctx(history=[{"command": "write_to_file", "args": {"file": "sea.txt"}, "result": "wrote 9"}])
    assert _answers(fewshot.build_prompt(done, WRITER))[-1]["command"]["name"] == "task_complete"


def test_inbox_result_brings_the_finish_example_last_for_a_manager():
    """A manager with a result in its inbox sees the task_complete example last."""
    ctx = _ctx(history=[{"command": "start_agent", "args": {}, "result": "started"}],
               inbox=["writer finished: wrote sea.txt"])
    assert _answers(fewshot.build_prompt(ctx, MANAGER))[-1]["command"]["name"] == "task_complete"
    waiting = _ctx(history=[{"command": "start_agent", "args": {}, "result": "started"}])
    assert _answers(fewshot.build_prompt(waiting, MANAGER))[-1]["command"]["name"] == "do_nothing"


def test_wait_step_falls_back_to_list_agents_without_do_nothing():
    """A manager that may not use do_nothing is shown list_agents in the waiting step."""
    names = [a["command"]["name"] for a in _answers(
        fewshot.build_prompt(_ctx(), ["start_agent", "list_agents", "task_complete"], max_examples=9))]
    assert "list_agents" in names and "do_nothing" not in names


def test_delegation_example_starts_a_role_the_agent_may_start():
    """With can_start in the context the delegation example starts that role."""
    p = fewshot.build_prompt(_ctx(can_start=["scribe"]), MANAGER, max_examples=9)
    starts = [a for a in _answers(p) if a["command"]["name"] == "start_agent"]
    assert starts and all(a["command"]["args"]["name"] == "scribe" for a in starts)


def test_role_examples_come_first_in_rank_and_keep_their_command():
    """The role's own examples from the YAML are rendered and win ties against generic ones."""
    ex = {"task": "Write a limerick into l.txt",
          "answer": {"thoughts": {"text": "Write it."},
                     "command": {"name": "write_to_file", "args": {"file": "l.txt", "text": "There once"}}}}
    answers = _answers(fewshot.build_prompt(_ctx(examples=[ex, "junk", {"answer": 3}]), WRITER))
    assert answers[-1] == {"command": {"name": "write_to_file", "args": {"file": "l.txt", "text": "There once"}},
                           "thought": "Write it."}


def test_max_examples_bounds_the_prompt():
    """max_examples limits the worked examples, down to none."""
    assert len(_answers(fewshot.build_prompt(_ctx(), WRITER, max_examples=2))) == 2
    assert _answers(fewshot.build_prompt(_ctx(), WRITER, max_examples=0)) == []


def test_long_history_and_results_are_clipped():
    """Only the last few history steps are shown, each result clipped."""
    history = [{"command": "read_file", "args": {"file": f"f{i}"}, "result": "x" * 1000} for i in range(10)]
    now = fewshot.build_prompt(_ctx(history=history), WRITER).split("Now:")[-1]
    assert now.count("\n- read_file") == fewshot.MAX_HISTORY
    assert "x" * (fewshot.MAX_RESULT + 1) not in now


def test_missing_context_falls_back_to_the_prompt_text():
    """A request without context still gets a situation, with the prompt as its task."""
    p = fewshot.build_prompt({}, WRITER, fallback_task="Do the thing")
    assert "Task: Do the thing" in p.split("Now:")[-1]


def _files(value) -> set[str]:
    return set(re.findall(r"[\w-]+\.txt", json.dumps(value, default=str)))


def test_examples_name_other_files_than_the_demo_goal():
    """The generic examples, the demo's own examples and the demo's goal name three disjoint sets of
    files, so a model that copies an example is seen doing so (it writes or claims the wrong file)."""
    cfg = load_config(ROOT / "configs" / "demo.yaml")
    episodes = [c.episode for c in map(CATALOG.get, CATALOG.names()) if c is not None and c.episode]
    generic = _files([dataclasses.asdict(e) for e in episodes]
                     + [dataclasses.asdict(delegation(r)) for r in cfg.agents])
    demo = _files([role.examples for role in cfg.agents.values()])
    goal = _files(cfg.goal)
    assert generic and demo and goal
    assert not generic & demo and not generic & goal and not demo & goal, (generic, demo, goal)


def test_the_demo_examples_are_valid_short_answers():
    """Every worked answer of configs/demo.yaml fits its role's grammar, free-text patterns included."""
    cfg = load_config(ROOT / "configs" / "demo.yaml")
    for name, role in cfg.agents.items():
        ctx = _ctx(name=name, role=role.role, examples=list(role.examples), can_start=list(role.can_start))
        answers = _answers(fewshot.build_prompt(ctx, role.commands, max_examples=9))
        assert len(answers) >= len(role.examples)
        compact = schema.compact_schema(role.commands)
        for a in answers:
            assert schema.validate(a, compact) == [], a
