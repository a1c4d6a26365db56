"""A plain completion prompt with worked examples, for a small *base* model.

The embedded Gemma 3 270M has no chat template and follows no instructions;
it continues text. So the prompt is a short header, a few worked examples
(situation → one-line JSON answer) and the agent's own situation ending in
``Answer:``; a JSON-schema grammar (``schema.py``) then makes the answer a
well-formed command of the role. Stable parts come first so the model's
cache reuses them from one step to the next.

The situation comes from ``Complete.context``: ``name``, ``role``, ``task``,
``goals`` (list), ``history`` (list of ``{command, args, result}``),
``inbox`` (list of str), optionally ``can_start`` (the roles it may start:
the delegation example then starts the first of them) and ``examples`` —
the role's own worked examples
from the swarm YAML, each either a full example ``{task?, history?, inbox?,
answer: {thoughts, command}}`` or just an answer ``{thoughts?, command}``
(shown with the agent's own task). Generic examples per command fill the
rest: the catalog's episodes (``swarm_core.catalog``) of the role's first two
commands, step by step, ending with ``task_complete`` (two episodes teach
"work done → finish" far better than one), ranked so the example closest to
the agent's state comes last.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from swarm_core.catalog import CATALOG, Catalog, Episode, delegation

HEADER = ("Each answer is one JSON object: the one command to run next with its args, then a "
          "short thought. Only the listed commands exist.\n")
MAX_HISTORY = 4
MAX_RESULT = 160
MAX_TASK = 400


def _short(text: Any, limit: int) -> str:
    s = text if isinstance(text, str) else json.dumps(text, ensure_ascii=False)
    s = " ".join(s.split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


def answer_json(command: str, args: dict[str, Any], thought: str) -> str:
    """One answer as the compact JSON line the grammar also produces (``schema.compact_schema``)."""
    return json.dumps({"command": {"name": command, "args": args}, "thought": thought},
                      ensure_ascii=False)


def commands_line(commands: list[str] | tuple[str, ...], catalog: Catalog = CATALOG) -> str:
    """``Commands: write_to_file(file, text), task_complete(reason)`` (names not in the catalog left out)."""
    parts = []
    for name in commands:
        cmd = catalog.get(name)
        if cmd is not None:
            parts.append(f"{name}({', '.join(cmd.arg_names)})")
    return "Commands: " + ", ".join(parts)


def situation(name: str, role: str, task: str, commands_text: str, goals: list[str] | tuple[str, ...] = (),
              history: list[dict[str, Any]] | tuple = (), inbox: list[str] | tuple = ()) -> str:
    """The block describing one agent's state, ending in ``Answer:``."""
    lines = [f"Agent: {name}. Role: {_short(role, 200)}", f"Task: {_short(task, MAX_TASK)}"]
    if goals:
        lines.append("Goals: " + "; ".join(_short(g, 120) for g in goals[:5]))
    lines.append(commands_text)
    if history:
        lines.append("Done so far:")
        for h in list(history)[-MAX_HISTORY:]:
            args = h.get("args") if isinstance(h, dict) else None
            cmd = h.get("command", "?") if isinstance(h, dict) else "?"
            res = h.get("result", "") if isinstance(h, dict) else h
            lines.append(f"- {cmd} {_short(args or {}, 100)} -> {_short(res, MAX_RESULT)}")
    else:
        lines.append("Done so far: nothing")
    lines.append("Inbox: " + (" | ".join(_short(x, MAX_RESULT) for x in inbox[-3:]) if inbox else "empty"))
    return "\n".join(lines) + "\nAnswer: "


@dataclass(frozen=True)
class Example:
    """A rendered worked example and the state it shows (to rank it against ours)."""

    text: str
    steps_done: int
    inbox: bool


def episode_examples(ep: Episode, allowed: list[str] | tuple[str, ...], commands_text: str) -> list[Example]:
    """The steps of ``ep`` the role may take, each as a worked example."""
    out: list[Example] = []
    history: list[dict[str, Any]] = []
    inbox: list[str] = []
    for planned in ep.steps:
        step = next((s for s in (planned, *planned.instead) if s.command in allowed), None)
        if step is None:
            continue
        inbox.extend(step.inbox)
        text = (situation(ep.name, ep.role, ep.task, commands_text, history=history, inbox=inbox)
                + answer_json(step.command, step.args, step.thought))
        out.append(Example(text, len(history), bool(inbox)))
        history.append({"command": step.command, "args": step.args, "result": step.result})
    return out


def role_examples(examples: list[Any], ctx: dict[str, Any], commands_text: str) -> list[Example]:
    """The role's own worked examples (from the swarm YAML), rendered like the generic ones."""
    out = []
    for ex in examples:
        if not isinstance(ex, dict):
            continue
        answer = ex.get("answer", ex if "command" in ex else None)
        if not isinstance(answer, dict) or not isinstance(answer.get("command"), dict):
            continue
        cmd = answer["command"]
        thoughts = answer.get("thoughts")
        thought = answer.get("thought") or (thoughts.get("text") if isinstance(thoughts, dict) else "") \
            or "This is the next step."
        history = ex.get("history") or ()
        inbox = ex.get("inbox") or ()
        text = (situation(str(ctx.get("name", "agent")), str(ctx.get("role", "")),
                          str(ex.get("task", ctx.get("task", ""))), commands_text,
                          history=history, inbox=inbox)
                + answer_json(str(cmd.get("name", "")), cmd.get("args") or {}, _short(thought, 80)))
        out.append(Example(text, len(history), bool(inbox)))
    return out


def rank(examples: list[Example], steps_done: int, inbox: bool, limit: int) -> list[Example]:
    """The ``limit`` examples closest to our state, the closest last (a base model copies the last)."""
    def distance(ex: Example) -> int:
        return abs(ex.steps_done - min(steps_done, 3)) + (3 if ex.inbox != inbox else 0)

    order = sorted(range(len(examples)), key=lambda i: (distance(examples[i]), i))[:limit]
    return [examples[i] for i in reversed(order)]


def _episodes(commands: list[str] | tuple[str, ...], can_start: list[str], catalog: Catalog) -> list[Episode]:
    """The catalog's worked episodes of the role's first two commands that have one."""
    found = [(c, cmd.episode) for c in commands if (cmd := catalog.get(c)) is not None and cmd.episode]
    return [delegation(can_start[0]) if name == "start_agent" and can_start else ep for name, ep in found[:2]]


def build_prompt(ctx: dict[str, Any], commands: list[str] | tuple[str, ...], fallback_task: str = "",
                 max_examples: int = 4, catalog: Catalog = CATALOG) -> str:
    """The whole completion prompt for one step of the agent described by ``ctx``."""
    text = commands_line(commands, catalog)
    examples = role_examples(list(ctx.get("examples") or ()), ctx, text)
    can_start = [str(r) for r in ctx.get("can_start") or () if isinstance(r, str) and r]
    for ep in _episodes(commands, can_start, catalog):
        examples += episode_examples(ep, commands, text)
    chosen = rank(examples, len(ctx.get("history") or ()), bool(ctx.get("inbox")), max_examples)
    blocks = [HEADER] + [f"Example:\n{e.text}\n" for e in chosen]
    blocks.append("Now:\n" + situation(
        str(ctx.get("name") or "agent"), str(ctx.get("role") or ""),
        str(ctx.get("task") or fallback_task), text, goals=list(ctx.get("goals") or ()),
        history=list(ctx.get("history") or ()), inbox=list(ctx.get("inbox") or ())))
    return "\n".join(blocks)
