"""Parse the model's answer into a :class:`Decision`, with bounded repair.

The expected answer is the seed format::

    {"thoughts": {"text": ..., "reasoning": ..., "plan": ..., "criticism": ..., "speak": ...},
     "command": {"name": "...", "args": {...}}}

:func:`parse_decision` returns a :class:`Decision` or raises :class:`ParseError`
whose message is meant for the model (what was wrong, and the expected
format). It never raises anything else, whatever the input.

Repairs, all bounded and applied only where they cannot change meaning:

- code fences and prose around the JSON object are dropped (the first
  balanced ``{...}`` that holds a command is used, at most a few candidates);
- ``json.loads(..., strict=False)`` accepts raw newlines inside strings;
- trailing commas before ``}`` or ``]`` (outside strings) are removed;
- Python-literal style (single quotes, ``True``/``None``) is read with a tiny
  literal evaluator over ``ast`` (constants, dicts, lists only — never eval).

Shapes accepted for the command, when unambiguous:
``"command": {"name": N, "args": A}``; ``"command": N`` with a top-level
``"args"``; a top-level ``"name"``/``"args"`` with no ``"command"``;
``"command": {N: A}`` (exactly one key). ``"arguments"`` is read as
``"args"`` when ``"args"`` is absent. Missing or null args mean ``{}``.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from typing import Any

MAX_ANSWER_CHARS = 100_000
MAX_CANDIDATES = 8
MAX_NESTING = 64

RESPONSE_FORMAT = (
    '{"thoughts": {"text": "thought", "reasoning": "reasoning", '
    '"plan": "- short bulleted\\n- list", "criticism": "constructive self-criticism", '
    '"speak": "summary"}, '
    '"command": {"name": "command name", "args": {"arg name": "value"}}}'
)


class ParseError(Exception):
    """The answer could not be used; ``message`` is an observation for the model."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Decision:
    """One parsed step: the model's thoughts and the command it chose."""

    thoughts: dict[str, Any]
    command: str
    args: dict[str, Any]
    raw: str


def _fail(what: str) -> ParseError:
    return ParseError(
        f"your answer could not be used: {what}. Respond with exactly one JSON object "
        f"(double quotes, no comments, no text around it) in this format: {RESPONSE_FORMAT}"
    )


_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n?(.*?)```", re.DOTALL)


def _fenced_blocks(text: str) -> list[str]:
    """Contents of ``` fenced blocks that contain a brace, in order."""
    return [m.group(1) for m in _FENCE.finditer(text) if "{" in m.group(1)]


def _balanced_object(text: str, start: int) -> str | None:
    """The ``{...}`` starting at ``start``, matched outside strings, or None if unbalanced."""
    depth = 0
    quote = ""
    escaped = False
    for i in range(start, len(text)):
        ch = text[i]
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
            continue
        if ch in "\"'":
            quote = ch
        elif ch in "{[":
            depth += 1
            if depth > MAX_NESTING:
                return None
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return text[start:i + 1]
            if depth < 0:
                return None
    return None


def _candidates(text: str) -> list[str]:
    """Plausible JSON object texts in ``text``, most likely first, bounded in number."""
    out: list[str] = []
    sources = _fenced_blocks(text) + [text]
    for source in sources:
        pos = source.find("{")
        while pos != -1 and len(out) < MAX_CANDIDATES:
            span = _balanced_object(source, pos)
            if span is not None:
                out.append(span)
                pos = source.find("{", pos + len(span))
            else:
                pos = source.find("{", pos + 1)
        first, last = source.find("{"), source.rfind("}")
        if first != -1 and last > first:
            out.append(source[first:last + 1])  # unbalanced quotes/braces: try the widest span too
        if len(out) >= MAX_CANDIDATES:
            break
    seen: set[str] = set()
    return [c for c in out if not (c in seen or seen.add(c))]


def _strip_trailing_commas(text: str) -> str:
    """Remove commas directly before ``}``/``]`` (whitespace between), outside strings."""
    out: list[str] = []
    quote = ""
    escaped = False
    pending_comma = -1
    for ch in text:
        if quote:
            out.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
            continue
        if ch in "}]" and pending_comma != -1:
            del out[pending_comma]
            pending_comma = -1
        elif ch == ",":
            pending_comma = len(out)
        elif not ch.isspace():
            pending_comma = -1
        if ch in "\"'":
            quote = ch
        out.append(ch)
    return "".join(out)


_NAMES = {"true": True, "false": False, "null": None, "True": True, "False": False, "None": None}


def _literal(node: ast.AST, depth: int = 0) -> Any:
    """Evaluate a JSON-like Python literal node; ValueError on anything else."""
    if depth > MAX_NESTING:
        raise ValueError("too deeply nested")
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float, bool, type(None))):
        return node.value
    if isinstance(node, ast.Name) and node.id in _NAMES:
        return _NAMES[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)) \
            and isinstance(node.operand, ast.Constant) and type(node.operand.value) in (int, float):
        return -node.operand.value if isinstance(node.op, ast.USub) else node.operand.value
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_literal(e, depth + 1) for e in node.elts]
    if isinstance(node, ast.Dict):
        out = {}
        for k, v in zip(node.keys, node.values):
            key = None if k is None else _literal(k, depth + 1)
            if not isinstance(key, str):
                raise ValueError("keys must be strings")
            out[key] = _literal(v, depth + 1)
        return out
    raise ValueError(f"not a literal: {type(node).__name__}")


def _load(candidate: str) -> Any:
    """Decode one candidate with the bounded repairs; ValueError if none works."""
    for text in (candidate, _strip_trailing_commas(candidate)):
        try:
            return json.loads(text, strict=False)
        except (ValueError, RecursionError):
            pass
    try:
        tree = ast.parse(_strip_trailing_commas(candidate).strip(), mode="eval")
        return _literal(tree.body)
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError, OverflowError):
        raise ValueError("not JSON") from None


def _command_of(obj: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Extract (name, args) from a decoded answer; ParseError when missing or ambiguous."""
    def args_of(holder: dict[str, Any]) -> Any:
        if "args" in holder and "arguments" in holder:
            raise _fail('both "args" and "arguments" are given')
        return holder.get("args", holder.get("arguments"))

    command = obj.get("command")
    if isinstance(command, dict):
        if "name" in obj and obj["name"] != command.get("name"):
            raise _fail('"name" is given both inside and outside "command"')
        if "name" in command:
            name, args = command["name"], args_of(command)
            if args is None and ("args" in obj or "arguments" in obj):
                args = args_of(obj)
        elif len(command) == 1 and isinstance(next(iter(command.values())), (dict, type(None))):
            name, args = next(iter(command.items()))
        else:
            raise _fail('"command" has no "name"')
    elif isinstance(command, str):
        if isinstance(obj.get("name"), str) and obj["name"] != command:
            raise _fail('"command" and "name" disagree')
        name, args = command, args_of(obj)
    elif command is None and "command" not in obj and isinstance(obj.get("name"), str):
        name, args = obj["name"], args_of(obj)
    elif "command" in obj:
        raise _fail('"command" must be an object with "name" and "args"')
    else:
        raise _fail('there is no "command"')
    if not isinstance(name, str) or not name.strip():
        raise _fail("the command name must be a non-empty string")
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise _fail(f'the "args" of {name.strip()!r} must be an object mapping argument names to values')
    return name.strip(), args


def _thoughts_of(obj: dict[str, Any]) -> dict[str, Any]:
    thoughts = obj.get("thoughts")
    if thoughts is None:
        return {}
    if isinstance(thoughts, str):
        return {"text": thoughts}
    if isinstance(thoughts, dict):
        return thoughts
    raise _fail('"thoughts" must be an object')


def parse_decision(text: Any) -> Decision:
    """Parse one model answer; raise :class:`ParseError` (and nothing else) if unusable."""
    try:
        return _parse(text)
    except ParseError:
        raise
    except Exception as exc:  # noqa: BLE001 - the contract: only ParseError leaves this function
        raise _fail(f"it could not be read ({type(exc).__name__})") from None


def _parse(text: Any) -> Decision:
    if not isinstance(text, str):
        raise _fail(f"expected text, got {type(text).__name__}")
    if not text.strip():
        raise _fail("the answer is empty")
    if len(text) > MAX_ANSWER_CHARS:
        raise _fail(f"the answer is {len(text)} characters long, more than {MAX_ANSWER_CHARS}")
    candidates = _candidates(text)
    decoded: list[dict[str, Any]] = []
    for candidate in candidates:
        try:
            value = _load(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            decoded.append(value)
    with_command = [d for d in decoded if "command" in d or ("name" in d and "args" in d)]
    if not with_command:
        first = text.find("{")
        if first == -1:
            raise _fail("there is no JSON object in it")
        if _balanced_object(text, first) is None:
            raise _fail("the JSON object is incomplete (unbalanced braces or quotes; was it cut off?)")
        raise _fail('there is no "command"' if decoded else "it is not valid JSON")
    obj = with_command[0]
    name, args = _command_of(obj)
    return Decision(thoughts=_thoughts_of(obj), command=name, args=args, raw=text)
