"""The types of the command catalog: arguments, ports, worked episodes, commands.

All are frozen dataclasses checked when they are built, so a malformed entry
fails at import with a :class:`CatalogError` naming it. They hold data and
lookups only: the agent binds implementations to them (``agents/commands``),
the gateway renders them (``orchestrator/gateway/schema.py``, ``fewshot.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Iterable, Iterator, Mapping

JSON_TYPES = frozenset({"string", "integer", "number", "boolean"})
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


class CatalogError(TypeError):
    """The catalog, or an implementation bound to it, is inconsistent (a programming error)."""


class Port(StrEnum):
    """What a command may need from the world outside its agent."""

    SUPERVISOR = "supervisor"  # start, list and stop sub-agents
    PEERS = "peers"  # talk to other agents
    MEMORY = "memory"  # the shared long-term memory service
    WORKSPACE = "workspace"  # the files of the swarm's workspace
    INBOX = "inbox"  # wait until a message arrives
    HEARTBEAT = "heartbeat"  # keep the bus loop (heartbeats) going during a long wait


@dataclass(frozen=True)
class Arg:
    """One argument of a command, as the model writes it in ``args``.

    ``max_length`` (strings only) replaces the gateway's default maximum length
    for this argument; ``pattern`` (strings only) is a JSON Schema ``pattern``;
    ``target``: the argument names what the command acts on (a file, an agent, a
    url), so loop detection compares it exactly, never as a near-duplicate.
    """

    name: str
    description: str
    type: str = "string"
    optional: bool = False
    max_length: int | None = None
    pattern: str | None = None
    target: bool = False

    def __post_init__(self) -> None:
        where = f"argument {self.name!r}"
        if not _NAME.match(self.name):
            raise CatalogError(f"{where}: a name must be a lower-case identifier")
        if self.type not in JSON_TYPES:
            raise CatalogError(f"{where}: type {self.type!r} is not one of {', '.join(sorted(JSON_TYPES))}")
        if self.type != "string" and (self.max_length is not None or self.pattern is not None):
            raise CatalogError(f"{where}: max_length and pattern apply to strings only")
        if self.max_length is not None and self.max_length < 1:
            raise CatalogError(f"{where}: max_length must be at least 1")
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise CatalogError(f"{where}: pattern does not compile: {exc}") from None


@dataclass(frozen=True)
class Step:
    """One worked step: the command chosen, why, and what it returned."""

    command: str
    args: dict[str, Any]
    thought: str
    result: str = ""
    inbox: tuple[str, ...] = ()  # what arrived in the inbox before this step
    instead: tuple["Step", ...] = ()  # used in this order when the role may not use ``command``


@dataclass(frozen=True)
class Episode:
    """A task solved in a few steps (the worked examples of one command)."""

    name: str
    role: str
    task: str
    steps: tuple[Step, ...] = ()

    def all_steps(self) -> Iterator[Step]:
        """Every step, the fallbacks (``instead``) included."""
        for step in self.steps:
            yield step
            yield from step.instead


@dataclass(frozen=True)
class Command:
    """One command an agent may use: what the model is told and what it needs."""

    name: str
    description: str  # the seed's short label, e.g. "Write to file"
    args: tuple[Arg, ...] = ()
    ports: frozenset[Port] = frozenset()
    episode: Episode | None = None  # worked example for small models, if any

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise CatalogError(f"command {self.name!r}: a name must be a lower-case identifier")
        names = [a.name for a in self.args]
        if len(set(names)) != len(names):
            raise CatalogError(f"command {self.name!r}: an argument is declared twice")
        unknown = sorted(str(p) for p in self.ports if str(p) not in {port.value for port in Port})
        if unknown:
            raise CatalogError(f"command {self.name!r}: unknown port(s) {', '.join(unknown)}; "
                               f"known: {', '.join(Port)}")
        object.__setattr__(self, "ports", frozenset(Port(p) for p in self.ports))

    @property
    def arg_names(self) -> tuple[str, ...]:
        """The argument names, in prompt order."""
        return tuple(a.name for a in self.args)

    @property
    def optional(self) -> frozenset[str]:
        """The names of the arguments the model may leave out."""
        return frozenset(a.name for a in self.args if a.optional)

    @property
    def required(self) -> tuple[str, ...]:
        """The names of the arguments the model must give, in prompt order."""
        return tuple(a.name for a in self.args if not a.optional)

    def arg_problems(self, args: Mapping[str, Any]) -> list[str]:
        """What is wrong with the argument names of ``args`` (``missing x``, ``unexpected y``); [] if none."""
        problems = []
        missing = sorted(set(self.required) - set(args))
        unknown = sorted(set(args) - set(self.arg_names))
        if missing:
            problems.append(f"missing {', '.join(missing)}")
        if unknown:
            problems.append(f"unexpected {', '.join(unknown)}")
        return problems


@dataclass(frozen=True)
class Catalog:
    """Every command by name, checked as a whole: unique names, episodes that use real commands."""

    commands: tuple[Command, ...]
    _by_name: Mapping[str, Command] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name: dict[str, Command] = {}
        for cmd in self.commands:
            if cmd.name in by_name:
                raise CatalogError(f"command {cmd.name!r} is in the catalog twice")
            by_name[cmd.name] = cmd
        object.__setattr__(self, "_by_name", by_name)
        for cmd in self.commands:
            if cmd.episode is not None:
                self._check_episode(cmd.name, cmd.episode)

    def _check_episode(self, owner: str, episode: Episode) -> None:
        for step in episode.all_steps():
            target = self._by_name.get(step.command)
            if target is None:
                raise CatalogError(f"episode of {owner!r}: step uses unknown command {step.command!r}")
            problems = target.arg_problems(step.args)
            if problems:
                raise CatalogError(f"episode of {owner!r}: {step.command} step has {'; '.join(problems)}")

    def get(self, name: str) -> Command | None:
        """The command called ``name``, if the catalog has it."""
        return self._by_name.get(name) if isinstance(name, str) else None

    def names(self) -> tuple[str, ...]:
        """Every command name, in catalog order."""
        return tuple(self._by_name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._by_name

    def __iter__(self) -> Iterator[Command]:
        return iter(self.commands)

    def __len__(self) -> int:
        return len(self.commands)

    def with_commands(self, extra: Iterable[Command]) -> "Catalog":
        """A new catalog with ``extra`` added (for a swarm or test that brings its own commands)."""
        return Catalog(self.commands + tuple(extra))
