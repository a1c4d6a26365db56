"""The agent's prompt, in the seed format of Auto-GPT.

``build_prompt`` returns the full text for chat models and a structured
``context`` dict with the same facts, from which a small local completion
model's provider builds its own few-shot prompt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from agents.commands import registry

CONSTRAINTS = (
    "~4000 word limit for short term memory. Your short term memory is short, so immediately save "
    "important information to files.",
    "If you are unsure how you previously did something or want to recall past events, thinking "
    "about similar events will help you remember.",
    "No user assistance",
    'Exclusively use the commands listed in double quotes e.g. "command name"',
    "Sub-agents you start work on their own; their results arrive in your INBOX. Use do_nothing to "
    "wait for them.",
)
RESOURCES = (
    "Long Term memory management.",
    "Sub-agents for delegation of simple tasks (if you may start any).",
    "File output in the swarm workspace.",
)
EVALUATION = (
    "Continuously review and analyze your actions to ensure you are performing to the best of your "
    "abilities.",
    "Constructively self-criticize your big-picture behavior constantly.",
    "Reflect on past decisions and strategies to refine your approach.",
    "Every command has a cost, so be smart and efficient. Aim to complete tasks in the least number "
    "of steps.",
)
RESPONSE_FORMAT = {
    "thoughts": {
        "text": "thought",
        "reasoning": "reasoning",
        "plan": "- short bulleted\n- list that conveys\n- long-term plan",
        "criticism": "constructive self-criticism",
        "speak": "thoughts summary to say to user",
    },
    "command": {"name": "command name", "args": {"arg name": "value"}},
}
USER_TURN = "Determine which next command to use, and respond using the format specified above:"

HISTORY_ITEMS = 8
RESULT_CHARS = 600


@dataclass
class PromptInput:
    """Everything one step's prompt is made of."""

    name: str
    role: str
    task: str
    goals: list[str]
    commands: list[str]
    can_start: list[str] = field(default_factory=list)
    extra: str = ""  # the prompt given by the parent to start_agent
    history: list[dict[str, Any]] = field(default_factory=list)
    inbox: list[str] = field(default_factory=list)
    questions: list[str] = field(default_factory=list)
    memories: list[str] = field(default_factory=list)
    examples: list[dict[str, Any]] = field(default_factory=list)


def _numbered(items: list[str] | tuple[str, ...]) -> str:
    return "\n".join(f"{i}. {x}" for i, x in enumerate(items, 1))


def _clip(text: str, n: int = RESULT_CHARS) -> str:
    return text if len(text) <= n else text[: n - 20] + " …[truncated]"


def build_prompt(p: PromptInput) -> tuple[str, dict[str, Any]]:
    """Return ``(prompt_text, context)`` for one step."""
    goals = list(p.goals)
    parts = [
        f"You are {p.name}, {p.role}",
        "Your decisions must always be made independently without seeking user assistance. Play to "
        "your strengths as an LLM and pursue simple strategies with no legal complications.",
        "",
        f"TASK:\n{p.task}",
    ]
    if p.extra:
        parts += ["", f"INSTRUCTIONS FROM YOUR PARENT:\n{p.extra}"]
    if goals:
        parts += ["", "GOALS:\n" + _numbered(goals)]
    parts += ["", "CONSTRAINTS:\n" + _numbered(CONSTRAINTS)]
    parts += ["", "COMMANDS:\n" + "\n".join(registry.describe(p.commands))]
    if p.can_start:
        parts.append("Roles you may start with start_agent (name it after the role): "
                     + ", ".join(p.can_start))
    parts += ["", "RESOURCES:\n" + _numbered(RESOURCES)]
    parts += ["", "PERFORMANCE EVALUATION:\n" + _numbered(EVALUATION)]
    if p.memories:
        parts += ["", "RELEVANT MEMORIES:\n" + "\n".join(f"- {_clip(x, 300)}" for x in p.memories)]
    recent = p.history[-HISTORY_ITEMS:]
    if recent:
        lines = []
        for h in recent:
            args = json.dumps(h.get("args", {}), ensure_ascii=False)
            lines.append(f"- {h.get('command')} {args} -> {_clip(str(h.get('result', '')))}")
        parts += ["", "RECENT HISTORY (oldest first):\n" + "\n".join(lines)]
    if p.inbox:
        parts += ["", "INBOX (new since your last step):\n" + "\n".join(f"- {_clip(x)}" for x in p.inbox)]
    if p.questions:
        parts += ["", "QUESTIONS WAITING FOR YOUR ANSWER (your thoughts.speak is sent back as the "
                  "reply):\n" + "\n".join(f"- {_clip(x)}" for x in p.questions)]
    parts += [
        "",
        "You should only respond in JSON format as described below",
        "RESPONSE FORMAT:",
        json.dumps(RESPONSE_FORMAT, indent=4),
        "Ensure the response can be parsed by Python json.loads",
    ]
    context = {
        "name": p.name,
        "role": p.role,
        "task": p.task,
        "goals": goals,
        "extra": p.extra,
        "can_start": list(p.can_start),
        "history": [
            {"command": h.get("command"), "args": h.get("args", {}), "result": _clip(str(h.get("result", "")), 200)}
            for h in recent[-5:]
        ],
        "inbox": [_clip(x, 300) for x in p.inbox],
        "questions": [_clip(x, 300) for x in p.questions],
        "memories": [_clip(x, 200) for x in p.memories[:3]],
        "examples": list(p.examples),
    }
    return "\n".join(parts), context
