"""The local model's grammar keeps the answer schema's property order: the command's name before its args."""

from __future__ import annotations

import re

import pytest

from orchestrator.config import LLM
from orchestrator.gateway import schema

pytestmark = pytest.mark.llama
pytest.importorskip("llama_cpp")

MANAGER = ["start_agent", "do_nothing", "task_complete"]
WRITER = ["write_to_file", "task_complete"]


class NullLog:
    def __getattr__(self, name):
        return lambda *a, **k: None


def _grammar_text(commands, tmp_path, **kw):
    """The GBNF text of the grammar the local provider builds for ``commands`` (no model is loaded)."""
    from orchestrator.gateway.providers.local import LocalProvider

    provider = LocalProvider(LLM(provider="local", model_path=str(tmp_path / "unused.gguf")), NullLog())
    return provider._grammar(schema.compact_schema(commands, **kw))._grammar


def _rules(text):
    return dict(line.split(" ::= ", 1) for line in text.splitlines() if " ::= " in line)


@pytest.mark.parametrize("commands", [MANAGER, WRITER, ["task_complete"]])
def test_the_command_name_comes_before_its_args(commands, tmp_path):
    """In every command rule of the grammar the name key comes before the args key, as in the schema."""
    rules = _rules(_grammar_text(commands, tmp_path, choices={"start_agent": {"name": ["writer"]}}))
    objects = {name: body for name, body in rules.items()
               if re.fullmatch(r"command(-\d+)?", name) and "-args-kv" in body}
    assert len(objects) == len(commands), rules.keys()
    for name, body in objects.items():
        assert body.index(f"{name}-name-kv") < body.index(f"{name}-args-kv"), (name, body)
    assert rules["root"].index("command-kv") < rules["root"].index("thought-kv")


def test_free_strings_follow_the_pattern_in_the_grammar(tmp_path):
    """The thought and task_complete's reason are built from the free-text pattern, not from any char."""
    rules = _rules(_grammar_text(WRITER, tmp_path))
    reason = next(body for name, body in rules.items() if name.endswith("-args-reason"))
    assert " char" not in rules["thought"] and " char" not in reason
    char_class = schema.FREE_TEXT[1:schema.FREE_TEXT.index("]{") + 1]
    assert rules["thought-1"] == char_class
