"""Tests of agents.parse: the model's JSON answer, with bounded repair."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.parse import Decision, ParseError, parse_decision

GOOD = {
    "thoughts": {"text": "t", "reasoning": "r", "plan": "- a\n- b", "criticism": "c", "speak": "s"},
    "command": {"name": "write_to_file", "args": {"file": "haiku.txt", "text": "sea"}},
}


def test_valid_answer():
    """A well-formed seed answer gives its thoughts, command, args and raw text."""
    raw = json.dumps(GOOD)
    d = parse_decision(raw)
    assert d == Decision(GOOD["thoughts"], "write_to_file", {"file": "haiku.txt", "text": "sea"}, raw)


def test_fenced_answer():
    """A JSON object inside a ```json fence with prose around it is used."""
    raw = "Sure! Here is my answer:\n```json\n" + json.dumps(GOOD, indent=2) + "\n```\nHope it helps."
    assert parse_decision(raw).command == "write_to_file"


def test_prose_wrapped_answer():
    """Prose (with braces of its own) before and after the object is dropped."""
    raw = "I think {this} matters. " + json.dumps(GOOD) + " That's all {folks}."
    d = parse_decision(raw)
    assert d.args == {"file": "haiku.txt", "text": "sea"}


def test_trailing_commas():
    """Trailing commas before } and ] are repaired."""
    raw = '{"thoughts": {"text": "a, b",}, "command": {"name": "list_agents", "args": {},},}'
    d = parse_decision(raw)
    assert (d.command, d.args, d.thoughts) == ("list_agents", {}, {"text": "a, b"})


def test_comma_inside_string_kept():
    """A ',}' inside a string value is not touched by the trailing-comma repair."""
    raw = '{"command": {"name": "write_to_file", "args": {"file": "a", "text": "x,}",},},}'
    assert parse_decision(raw).args["text"] == "x,}"


def test_single_quotes_and_python_literals():
    """Python-literal style answers (single quotes, True/None) are read without eval."""
    raw = "{'thoughts': {'text': \"it's\", 'ok': True}, 'command': {'name': 'do_nothing', 'args': None}}"
    d = parse_decision(raw)
    assert (d.command, d.args, d.thoughts) == ("do_nothing", {}, {"text": "it's", "ok": True})


def test_raw_newlines_in_strings():
    """Raw newlines inside strings are accepted (json strict=False)."""
    raw = '{"command": {"name": "write_to_file", "args": {"file": "a", "text": "line1\nline2"}}}'
    assert parse_decision(raw).args["text"] == "line1\nline2"


@pytest.mark.parametrize("raw, name, args", [
    ('{"command": "read_file", "args": {"file": "a"}}', "read_file", {"file": "a"}),
    ('{"name": "read_file", "args": {"file": "a"}}', "read_file", {"file": "a"}),
    ('{"command": {"read_file": {"file": "a"}}}', "read_file", {"file": "a"}),
    ('{"command": {"name": "read_file", "arguments": {"file": "a"}}}', "read_file", {"file": "a"}),
    ('{"command": {"name": " list_agents "}}', "list_agents", {}),
])
def test_unambiguous_variations(raw, name, args):
    """Top-level and shorthand command shapes are accepted when unambiguous."""
    d = parse_decision(raw)
    assert (d.command, d.args, d.thoughts) == (name, args, {})


@pytest.mark.parametrize("raw, fragment", [
    ("", "empty"),
    ("I will write the file now.", "no JSON object"),
    ("{not json at all", "incomplete"),
    ("{not json}", "not valid JSON"),
    ('{"command": {"name": "a", "args": {"x": 1}', "incomplete"),
    ('{"thoughts": {"text": "x"}}', 'no "command"'),
    ('{"command": {"name": "a", "args": {}}, "name": "b"}', "both inside and outside"),
    ('{"command": "a", "name": "b"}', "disagree"),
    ('{"command": {"name": "a", "args": "file=x"}}', '"args"'),
    ('{"command": {"name": "", "args": {}}}', "non-empty string"),
    ('{"command": {"name": 7}}', "non-empty string"),
    ('{"command": ["a"]}', "must be an object"),
    ('{"command": {"name": "a", "args": {}, "arguments": {}}}', "both"),
    ('{"command": {"name": "a"}, "thoughts": 5}', '"thoughts"'),
    ('[1, 2, 3]', "no JSON object"),
])
def test_invalid_answers(raw, fragment):
    """Unusable answers raise ParseError saying what is wrong and showing the expected format."""
    with pytest.raises(ParseError) as info:
        parse_decision(raw)
    assert fragment in info.value.message
    assert '"command": {"name": "command name"' in info.value.message


def test_non_text_and_oversized_input():
    """Non-string and huge inputs are ParseErrors, not crashes."""
    for value in (None, 42, b"{}", {"command": "x"}, "{" * 200_000):
        with pytest.raises(ParseError):
            parse_decision(value)


def test_deep_nesting_is_a_parse_error():
    """Pathologically nested JSON is refused with ParseError, not RecursionError."""
    deep = '{"command": {"name": "a", "args": ' + '{"a": ' * 5000 + "1" + "}" * 5000 + "}}"
    with pytest.raises(ParseError):
        parse_decision(deep)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=400))
def test_arbitrary_text_only_parse_error(text):
    """Any text either parses or raises ParseError — never another exception."""
    try:
        d = parse_decision(text)
    except ParseError as exc:
        assert exc.message
    else:
        assert isinstance(d.command, str) and d.command and isinstance(d.args, dict)


@settings(max_examples=300, deadline=None)
@given(_json, st.text(alphabet="{}[]\"',: \n`", max_size=30), st.text(alphabet="{}[]\"',: \n`", max_size=30))
def test_json_like_noise_only_parse_error(value, before, after):
    """JSON values wrapped in brace/quote noise never raise anything but ParseError."""
    text = before + json.dumps(value) + after
    try:
        parse_decision(text)
    except ParseError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=20).filter(str.strip), st.dictionaries(st.text(max_size=8), _json, max_size=4))
def test_roundtrip_any_command(name, args):
    """Any well-formed command object round-trips through the parser."""
    raw = json.dumps({"thoughts": {"text": "x"}, "command": {"name": name, "args": args}})
    d = parse_decision(raw)
    assert (d.command, d.args) == (name.strip(), args)
