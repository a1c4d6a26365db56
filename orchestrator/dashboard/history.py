"""An agent's step history (thoughts, command, result) from its own JSON-lines log.

The agent runtime logs ``step_decided`` (the model's thoughts and the chosen
command) and ``command_done`` (the observation) with the step number, and
``invalid_answer`` when the model's answer could not be parsed, and
``approval_denied`` when a person refused the command (its result is the
reason, as the model reads it); this module folds them into one entry per step.
"""

from __future__ import annotations

from typing import Any, Callable

Entry = dict[str, Any]


def _decided(entry: Entry, ev: dict[str, Any]) -> None:
    entry["thoughts"] = ev.get("thoughts") or {}
    entry["command"] = ev.get("command")
    entry["args"] = ev.get("args") or {}


def _done(entry: Entry, ev: dict[str, Any]) -> None:
    entry["result"] = ev.get("result")
    entry["ok"] = ev.get("ok")
    entry.setdefault("command", ev.get("command"))


def _denied(entry: Entry, ev: dict[str, Any]) -> None:
    entry["result"] = ev.get("result") or f"approval denied ({ev.get('reason') or 'no reason given'})"
    entry["ok"] = False
    entry["command"] = entry["command"] or ev.get("command")


def _invalid(entry: Entry, ev: dict[str, Any]) -> None:
    entry["command"] = "(invalid answer)"
    entry["result"] = ev.get("error")
    entry["ok"] = False


_FOLD: dict[str, Callable[[Entry, dict[str, Any]], None]] = {
    "step_decided": _decided,
    "command_done": _done,
    "invalid_answer": _invalid,
    "approval_denied": _denied,
}


def steps_of(events: list[dict[str, Any]], limit: int = 100) -> list[Entry]:
    """One entry per step, oldest first: ``{step, ts, thoughts, command, args, result, ok}``."""
    by_step: dict[int, Entry] = {}
    for ev in events:
        fold = _FOLD.get(ev.get("event", ""))
        step = ev.get("step")
        if fold is None or not isinstance(step, int):
            continue
        entry = by_step.setdefault(step, {"step": step, "ts": ev.get("ts"), "thoughts": {},
                                          "command": None, "args": {}, "result": None, "ok": None})
        fold(entry, ev)
    return [by_step[k] for k in sorted(by_step)][-limit:]
