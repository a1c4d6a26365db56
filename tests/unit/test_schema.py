"""The answer schema built from a role's commands accepts its commands only, with their exact args."""

from __future__ import annotations

import json

import jsonschema
import pytest

from orchestrator.gateway import schema
from swarm_core.catalog import CATALOG, Arg, Command

WRITER = ["write_to_file", "read_file", "task_complete"]
MANAGER = ["start_agent", "message_agent", "list_agents", "delete_agent", "task_complete"]
THOUGHTS = {"text": "t", "reasoning": "r", "plan": "- p", "criticism": "c", "speak": "s"}


def _answer(command, **args):
    return {"thoughts": dict(THOUGHTS), "command": {"name": command, "args": args}}


def _both(value, sch):
    """Our validator's verdict, checked against the reference jsonschema implementation."""
    ours = schema.validate(value, sch)
    ref = list(jsonschema.Draft202012Validator(sch).iter_errors(value))
    assert bool(ours) == bool(ref), (ours, [e.message for e in ref])
    return ours


def test_schema_is_valid_json_schema():
    """The generated schema is itself valid JSON Schema (draft 2020-12) and JSON-serialisable."""
    sch = schema.answer_schema(MANAGER)
    jsonschema.Draft202012Validator.check_schema(sch)
    json.dumps(sch)


@pytest.mark.parametrize("answer", [
    _answer("write_to_file", file="a.txt", text="hello"),
    _answer("read_file", file="a.txt"),
    _answer("task_complete", reason="done"),
])
def test_valid_writer_answers_pass(answer):
    """Each allowed command with exactly its arguments is accepted."""
    assert _both(answer, schema.answer_schema(WRITER)) == []


def test_command_outside_the_role_is_rejected_by_name():
    """A command the role may not use is rejected, naming the allowed ones."""
    errors = _both(_answer("delete_file", file="a.txt"), schema.answer_schema(WRITER))
    assert errors and "write_to_file" in errors[0] and "'delete_file'" in errors[0]


def test_unknown_and_missing_arguments_are_rejected():
    """Wrong argument names (extra or missing) fail for the named command."""
    sch = schema.answer_schema(WRITER)
    extra = _both(_answer("read_file", file="a", mode="r"), sch)
    assert any("unexpected 'mode'" in e for e in extra)
    missing = _both(_answer("write_to_file", file="a"), sch)
    assert any("misses 'text'" in e for e in missing)


def test_argument_names_come_from_the_catalog():
    """Each branch lists exactly the catalog's argument names, required unless optional."""
    sch = schema.answer_schema(MANAGER)
    branches = {b["properties"]["name"]["const"]: b["properties"]["args"]
                for b in sch["properties"]["command"]["anyOf"]}
    assert set(branches) == set(MANAGER)
    for name, args in branches.items():
        cmd = CATALOG.get(name)
        assert list(args["properties"]) == list(cmd.arg_names)
        assert set(args["required"]) == set(cmd.arg_names) - cmd.optional
        assert args["additionalProperties"] is False
    assert "role" not in branches["start_agent"]["required"]  # optional in the catalog


def test_strings_have_a_max_length():
    """Long argument strings are rejected (they would not fit a small model's token budget)."""
    sch = schema.answer_schema(WRITER, arg_max_len=20)
    assert _both(_answer("write_to_file", file="a", text="x" * 21), sch)
    assert not _both(_answer("write_to_file", file="a", text="x" * 20), sch)


def test_thoughts_and_command_are_required_and_nothing_else():
    """The answer needs thoughts and command, with no extra keys."""
    sch = schema.answer_schema(WRITER)
    assert _both({"command": {"name": "read_file", "args": {"file": "a"}}}, sch)
    assert _both({**_answer("read_file", file="a"), "extra": 1}, sch)
    assert _both("not an object", sch)
    bad_thoughts = _answer("read_file", file="a")
    del bad_thoughts["thoughts"]["plan"]
    assert _both(bad_thoughts, sch)


TESTING = CATALOG.with_commands([
    Command("_schema_test_count", "Count (test only)",
            (Arg("what", "what"), Arg("n", "how many", type="integer", optional=True))),
    Command("_schema_test_label", "Label (test only)",
            (Arg("label", "a short label", max_length=8, pattern="^[a-z]+$"), Arg("note", "a note"))),
])


def test_integer_arguments_are_integers():
    """An argument the catalog types integer must be a JSON integer, not a string or a bool; others are strings."""
    sch = schema.answer_schema(["_schema_test_count"], catalog=TESTING)
    args = sch["properties"]["command"]["properties"]["args"]
    assert args["properties"]["n"] == {"type": "integer"}
    assert args["properties"]["what"]["type"] == "string"
    assert args["required"] == ["what"]
    assert not _both(_answer("_schema_test_count", what="a", n=3), sch)
    assert not _both(_answer("_schema_test_count", what="a"), sch)
    assert _both(_answer("_schema_test_count", what="a", n="3"), sch)
    assert _both(_answer("_schema_test_count", what="a", n=True), sch)


def test_an_arguments_own_max_length_and_pattern_apply():
    """An argument's max_length replaces the default and its pattern is enforced; other strings keep the default."""
    sch = schema.answer_schema(["_schema_test_label"], arg_max_len=20, catalog=TESTING)
    jsonschema.Draft202012Validator.check_schema(sch)
    props = sch["properties"]["command"]["properties"]["args"]["properties"]
    assert props["label"] == {"type": "string", "maxLength": 8, "pattern": "^[a-z]+$"}
    assert props["note"] == {"type": "string", "maxLength": 20}
    assert not _both(_answer("_schema_test_label", label="abc", note="x" * 20), sch)
    assert any("longer than 8" in e for e in _both(_answer("_schema_test_label", label="a" * 9, note="x"), sch))
    assert any("pattern" in e for e in _both(_answer("_schema_test_label", label="ABC", note="x"), sch))


def test_a_single_command_needs_no_anyof():
    """With one command the command schema is that command's branch directly."""
    sch = schema.answer_schema(["task_complete"])
    assert "anyOf" not in sch["properties"]["command"]
    assert _both(_answer("read_file", file="a"), sch)
    assert not _both(_answer("task_complete", reason="ok"), sch)


def test_unknown_commands_are_left_out_and_none_known_is_an_error():
    """Names not in the catalog are skipped; a list with no catalog command raises ValueError."""
    sch = schema.answer_schema(["task_complete", "no_such_command"])
    assert "anyOf" not in sch["properties"]["command"]
    with pytest.raises(ValueError, match="none of the commands"):
        schema.answer_schema(["no_such_command"])


def test_choices_narrow_an_argument_to_fixed_values():
    """choices restrict start_agent's name to the roles the agent may start."""
    sch = schema.answer_schema(["start_agent"], choices={"start_agent": {"name": ["writer"]}})
    jsonschema.Draft202012Validator.check_schema(sch)
    assert not _both(_answer("start_agent", name="writer", task="t"), sch)
    errors = _both(_answer("start_agent", name="poet", task="t"), sch)
    assert errors and "'writer'" in errors[0]


def test_compact_answer_expands_to_a_valid_full_answer():
    """The small model's {command, thought} becomes a full answer the full schema accepts."""
    compact = {"command": {"name": "read_file", "args": {"file": "a"}}, "thought": "read it"}
    assert _both(compact, schema.compact_schema(WRITER)) == []
    full = schema.expand_compact(compact)
    assert _both(full, schema.answer_schema(WRITER)) == []
    assert full["thoughts"]["text"] == "read it"
    assert list(schema.compact_schema(WRITER)["properties"]) == ["command", "thought"]


@pytest.mark.parametrize("text", [
    'wrote poem.txt\n- start_agent {',       # a copied history line
    "Done so far: start_agent | INBOX",      # the inbox separator
    'the "sea"',                             # quotes (and with them any escape)
    "x",                                     # too short
    "y" * 101,                               # too long
    "ok\\nmore",                             # a backslash
])
def test_free_strings_refuse_prompt_fragments(text):
    """The compact schema's thought and task_complete reason refuse line breaks, JSON punctuation and more."""
    sch = schema.compact_schema(WRITER)
    reason = {"command": {"name": "task_complete", "args": {"reason": text}}, "thought": "finished"}
    thought = {"command": {"name": "task_complete", "args": {"reason": "finished"}}, "thought": text}
    assert _both(reason, sch) and _both(thought, sch)


def test_free_strings_accept_a_plain_sentence():
    """A plain sentence with a file name and an apostrophe is a valid reason and thought."""
    sch = schema.compact_schema(WRITER)
    text = "The writer's poem about the sea is in poem.txt, 3 lines."
    assert _both({"command": {"name": "task_complete", "args": {"reason": text}}, "thought": text}, sch) == []


def test_a_pattern_end_is_the_end_of_the_string():
    """A final newline does not slip past the pattern's $ (JSON Schema regexes are ECMA-262)."""
    sch = schema.compact_schema(["task_complete"])
    errors = schema.validate({"command": {"name": "task_complete", "args": {"reason": "done\n"}},
                              "thought": "done"}, sch)
    assert errors and "reason does not match" in errors[0]


def test_other_strings_and_the_full_schema_keep_a_length_limit_only():
    """write_to_file's text may hold line breaks; the full schema (chat models) has no pattern by default."""
    compact = schema.compact_schema(WRITER)
    poem = {"command": {"name": "write_to_file", "args": {"file": "a.txt", "text": "one\ntwo {x}"}},
            "thought": "write it"}
    assert _both(poem, compact) == []
    assert "pattern" not in json.dumps(schema.answer_schema(WRITER))
    assert _both(_answer("task_complete", reason="line one\nline two"), schema.answer_schema(WRITER)) == []
