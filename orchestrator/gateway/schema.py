"""The JSON schema of an agent's answer, built from the commands its role may use.

An answer is ``{"thoughts": {text, reasoning, plan, criticism, speak},
"command": {"name", "args"}}``. :func:`answer_schema` gives one ``anyOf``
branch per allowed command: ``name`` is a ``const``, ``args`` has exactly the
command's argument names and JSON types (from the command catalog,
``swarm_core.catalog``), strings have a short ``maxLength`` (the argument's
own, else ``arg_max_len``) so a small model's answer fits in its token
budget, and a ``pattern`` where the catalog gives one. The same schema drives
the local model's grammar (``LlamaGrammar.from_json_schema``) and an
OpenAI-compatible server's ``response_format``.

:func:`validate` checks a parsed answer against such a schema (the subset of
JSON Schema used here) and returns readable errors, empty when it is valid.
"""

from __future__ import annotations

import re
from typing import Any

from swarm_core.catalog import CATALOG, Arg, Catalog

THOUGHT_KEYS = ("text", "reasoning", "plan", "criticism", "speak")
# One short line of plain prose, for the free strings a small model writes for people to read
# (its thought, task_complete's reason). No quotes or backslashes (so no escapes such as \n),
# no line breaks, no JSON/list punctuation and no inbox separator: a base model that starts to
# copy its prompt ("Done so far:", "- start_agent {", "INBOX | ...") cannot go on doing so.
FREE_TEXT = r'^[^"\\\n\r\t{}\[\]|<>]{2,100}$'
FREE_ARGS: dict[str, tuple[str, ...]] = {"task_complete": ("reason",)}  # command -> its free strings


def _text(max_len: int, free_text: str | None) -> dict[str, Any]:
    """A free string: held to ``free_text`` (its length is in the pattern) or to ``max_len``."""
    # llama.cpp's grammar converter ignores maxLength next to a pattern: the pattern alone rules
    return {"type": "string", "pattern": free_text} if free_text else {"type": "string", "maxLength": max_len}


def _arg_schema(arg: Arg, arg_max_len: int, fixed: list[str] | None, free_text: str | None) -> dict[str, Any]:
    if fixed:
        return {"enum": list(dict.fromkeys(fixed))}
    if arg.type != "string":
        return {"type": arg.type}
    if free_text:
        return _text(arg_max_len, free_text)
    out: dict[str, Any] = {"type": "string", "maxLength": arg.max_length or arg_max_len}
    if arg.pattern is not None:
        out["pattern"] = arg.pattern
    return out


Choices = dict[str, dict[str, list[str]]]  # command -> argument -> the only values allowed


def command_schema(name: str, arg_max_len: int = 200, choices: Choices | None = None,
                   catalog: Catalog = CATALOG, free_text: str | None = None) -> dict[str, Any] | None:
    """The ``command`` branch for one catalog command, or None if it is unknown.

    ``choices`` narrows string arguments to fixed values (e.g. ``start_agent``'s
    ``name`` to the roles the agent may start); ``free_text``, a pattern, holds
    the command's free strings (:data:`FREE_ARGS`) to it.
    """
    cmd = catalog.get(name)
    if cmd is None:
        return None
    fixed = (choices or {}).get(name, {})
    free = FREE_ARGS.get(name, ())
    props = {a.name: _arg_schema(a, arg_max_len, fixed.get(a.name), free_text if a.name in free else None)
             for a in cmd.args}
    return {
        "type": "object",
        "properties": {
            "name": {"const": name},
            "args": {
                "type": "object",
                "properties": props,
                "required": list(cmd.required),
                "additionalProperties": False,
            },
        },
        "required": ["name", "args"],
        "additionalProperties": False,
    }


def answer_schema(commands: list[str] | tuple[str, ...], *, arg_max_len: int = 200,
                  thought_max_len: int = 120, choices: Choices | None = None,
                  catalog: Catalog = CATALOG, free_text: str | None = None) -> dict[str, Any]:
    """The schema of an answer naming one of ``commands`` (unknown names are left out).

    ``free_text`` (a pattern such as :data:`FREE_TEXT`) holds the thoughts and
    the commands' free strings to it instead of a bare length.
    Raises ValueError when none of ``commands`` is in the catalog.
    """
    branches = [b for b in (command_schema(c, arg_max_len, choices, catalog, free_text)
                            for c in dict.fromkeys(commands)) if b]
    if not branches:
        raise ValueError(f"none of the commands {list(commands)} is registered")
    return {
        "type": "object",
        "properties": {
            "thoughts": {
                "type": "object",
                "properties": {k: _text(thought_max_len, free_text) for k in THOUGHT_KEYS},
                "required": list(THOUGHT_KEYS),
                "additionalProperties": False,
            },
            "command": branches[0] if len(branches) == 1 else {"anyOf": branches},
        },
        "required": ["thoughts", "command"],
        "additionalProperties": False,
    }


def compact_schema(commands: list[str] | tuple[str, ...], *, arg_max_len: int = 200,
                   thought_max_len: int = 80, choices: Choices | None = None,
                   catalog: Catalog = CATALOG, free_text: str | None = FREE_TEXT) -> dict[str, Any]:
    """The short answer a small model writes: ``{"command": {...}, "thought": "..."}``.

    The command comes first so the model picks it before it can ramble, and
    within it ``name`` comes before ``args``: a grammar built from this schema
    must keep this insertion order. Free strings follow ``free_text``.
    :func:`expand_compact` turns the answer into the full format.
    """
    full = answer_schema(commands, arg_max_len=arg_max_len, thought_max_len=thought_max_len,
                         choices=choices, catalog=catalog, free_text=free_text)
    return {
        "type": "object",
        "properties": {
            "command": full["properties"]["command"],
            "thought": _text(thought_max_len, free_text),
        },
        "required": ["command", "thought"],
        "additionalProperties": False,
    }


def expand_compact(answer: dict[str, Any]) -> dict[str, Any]:
    """A compact answer in the full format (``thoughts`` with every key, then ``command``)."""
    thought = str(answer.get("thought", ""))
    return {
        "thoughts": {"text": thought, "reasoning": thought, "plan": "", "criticism": "", "speak": thought},
        "command": answer.get("command"),
    }


# ------------------------------------------------------------- validation

_PY_TYPES: dict[str, Any] = {
    "object": dict, "array": list, "string": str, "boolean": bool,
    "integer": int, "number": (int, float), "null": type(None),
}


def _type_ok(value: Any, kind: str) -> bool:
    if kind in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _PY_TYPES.get(kind, object))


def validate(value: Any, schema: dict[str, Any], path: str = "answer") -> list[str]:
    """Errors of ``value`` against ``schema`` (the subset built here); [] when valid."""
    if "const" in schema and value != schema["const"]:
        return [f"{path} must be {schema['const']!r}, not {value!r}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{path} must be one of {', '.join(map(repr, schema['enum']))}, not {value!r}"]
    if "anyOf" in schema:
        return _validate_any(value, schema["anyOf"], path)
    kind = schema.get("type")
    if kind is not None and not _type_ok(value, kind):
        return [f"{path} must be {'an' if kind[0] in 'aeiou' else 'a'} {kind}, not {type(value).__name__}"]
    errors: list[str] = []
    if kind == "string" and "maxLength" in schema and len(value) > schema["maxLength"]:
        errors.append(f"{path} is longer than {schema['maxLength']} characters")
    if kind == "string" and "pattern" in schema and not _pattern(schema["pattern"]).search(value):
        errors.append(f"{path} does not match the pattern {schema['pattern']}")
    if kind == "object":
        props = schema.get("properties", {})
        for key in schema.get("required", ()):
            if key not in value:
                errors.append(f"{path} misses {key!r}")
        if schema.get("additionalProperties") is False:
            extra = sorted(set(value) - set(props))
            if extra:
                errors.append(f"{path} has unexpected {', '.join(map(repr, extra))}"
                              f" (allowed: {', '.join(props) or 'none'})")
        for key, sub in props.items():
            if key in value:
                errors.extend(validate(value[key], sub, f"{path}.{key}"))
    return errors


def _pattern(pattern: str) -> re.Pattern[str]:
    """A JSON-schema pattern for Python's ``re``: its final ``$`` means the end of the string."""
    # ECMA-262's $ (JSON Schema's regex dialect) is the very end; Python's $ also matches before
    # a final newline, which would let "reason\n" through
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


def _validate_any(value: Any, branches: list[dict[str, Any]], path: str) -> list[str]:
    # our branches are discriminated by a ``const`` property (the command name)
    names = [b.get("properties", {}).get("name", {}).get("const") for b in branches]
    if isinstance(value, dict) and all(n is not None for n in names):
        for name, branch in zip(names, branches):
            if value.get("name") == name:
                return validate(value, branch, path)
        return [f"{path}.name must be one of {', '.join(names)}, not {value.get('name')!r}"]
    results = [validate(value, b, path) for b in branches]
    if any(not r for r in results):
        return []
    return [f"{path} matches none of the allowed forms: {results[0][0]}"]
