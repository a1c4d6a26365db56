"""The command registry: every command an agent's model may issue.

Commands register with ``@command(name, description, args)``; the runtime
dispatches by name through :func:`dispatch`, never through an if/elif chain.
A command takes a :class:`CommandContext` and its arguments as keywords and
returns the observation text for the model, raises :class:`CommandError`
(an error observation), or returns :class:`Finished` (``task_complete``).
Unknown commands, commands the role may not use, and wrong or missing
arguments all become error observations; nothing a model says crashes the
agent.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol


class CommandError(Exception):
    """A command failed in a way the model should hear about."""


@dataclass(frozen=True)
class Finished:
    """Returned by ``task_complete``: the agent's final result."""

    result: str


@dataclass(frozen=True)
class Observation:
    """What the model is told after a command ran."""

    command: str
    text: str
    ok: bool = True
    finished: bool = False


class AgentPorts(Protocol):
    """What commands may ask of the world outside the agent (the bus adapter)."""

    def start_agent(self, name: str, task: str, prompt: str, role: str) -> str: ...
    def message_agent(self, key: str, message: str) -> str: ...
    def list_agents(self) -> list[dict[str, Any]]: ...
    def delete_agent(self, key: str) -> str: ...
    def memory_add(self, text: str) -> int: ...
    def memory_search(self, query: str, k: int) -> list[dict[str, Any]]: ...
    def keep_alive(self, seconds: float) -> None: ...


@dataclass
class CommandContext:
    """Everything a command may use: who runs it, where, and through which ports."""

    agent_id: str
    role: str
    ports: Any  # AgentPorts
    workspace: Any = None  # agents.workspace.Workspace
    settings: dict[str, Any] = field(default_factory=dict)
    log: Any = None


@dataclass(frozen=True)
class CommandSpec:
    """A registered command: its function, argument names and description."""

    name: str
    fn: Callable[..., Any]
    args: dict[str, str]  # name -> short description, in prompt order
    description: str
    optional: frozenset[str] = frozenset()


_COMMANDS: dict[str, CommandSpec] = {}


def command(name: str, description: str, args: dict[str, str] | None = None) -> Callable:
    """Register the decorated function as command ``name``."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in _COMMANDS and _COMMANDS[name].fn is not fn:
            raise TypeError(f"command {name!r} registered twice")
        params = list(inspect.signature(fn).parameters.values())[1:]
        optional = frozenset(p.name for p in params if p.default is not inspect.Parameter.empty)
        declared = dict(args or {})
        if set(declared) != {p.name for p in params}:
            raise TypeError(f"command {name!r}: args {sorted(declared)} do not match the function")
        _COMMANDS[name] = CommandSpec(name, fn, declared, description, optional)
        return fn

    return wrap


def load_builtin_commands() -> None:
    """Import every command module so its commands register."""
    from agents.commands import agents as _a  # noqa: F401
    from agents.commands import code as _c  # noqa: F401
    from agents.commands import control as _ctl  # noqa: F401
    from agents.commands import files as _f  # noqa: F401
    from agents.commands import memory as _m  # noqa: F401
    from agents.commands import web as _w  # noqa: F401


def get(name: str) -> CommandSpec | None:
    """The spec registered as ``name``, if any."""
    return _COMMANDS.get(name)


def all_commands() -> dict[str, CommandSpec]:
    """Every registered command by name."""
    return dict(_COMMANDS)


def dispatch(ctx: CommandContext, name: Any, args: Any, allowed: frozenset[str] | set[str]) -> Observation:
    """Run command ``name`` with ``args`` for ``ctx`` if the role allows it."""
    if not isinstance(name, str) or not name:
        return Observation(str(name), "error: the command name must be a non-empty string", ok=False)
    spec = _COMMANDS.get(name)
    if spec is None or name not in allowed:
        listing = ", ".join(sorted(allowed))
        return Observation(name, f"error: unknown command {name!r}; you may use: {listing}", ok=False)
    if args is None:
        args = {}
    if not isinstance(args, dict):
        return Observation(name, f"error: args of {name} must be an object", ok=False)
    unknown = sorted(set(args) - set(spec.args))
    missing = sorted(set(spec.args) - set(args) - spec.optional)
    if unknown or missing:
        want = ", ".join(spec.args) or "no arguments"
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing)}")
        if unknown:
            parts.append(f"unexpected {', '.join(unknown)}")
        return Observation(name, f"error: bad arguments for {name} ({'; '.join(parts)}); it takes: {want}",
                           ok=False)
    try:
        result = spec.fn(ctx, **args)
    except CommandError as exc:
        return Observation(name, f"error: {exc}", ok=False)
    except (TypeError, ValueError) as exc:
        return Observation(name, f"error: bad arguments for {name}: {exc}", ok=False)
    if isinstance(result, Finished):
        return Observation(name, result.result, ok=True, finished=True)
    return Observation(name, "" if result is None else str(result), ok=True)


def describe(allowed: list[str] | tuple[str, ...]) -> list[str]:
    """Prompt lines for the allowed commands, seed style: ``name: "n", args: ...``."""
    lines = []
    for i, name in enumerate(allowed, 1):
        spec = _COMMANDS.get(name)
        if spec is None:
            continue
        args = ", ".join(f'"{a}": "<{d}>"' for a, d in spec.args.items())
        lines.append(f'{i}. {spec.description}: "{name}", args: {args}')
    return lines
