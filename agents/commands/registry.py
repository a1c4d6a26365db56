"""The command table: the catalog's commands bound to their implementations, and dispatch.

The runtime dispatches a model's command by name through :func:`dispatch`,
never through an if/elif chain. The table is built from the catalog
(``swarm_core.catalog``) and the :class:`~agents.commands.binding.Implementation`
objects that :func:`discover` finds in every module of this package (no
hand-kept module list): an implementation for an unknown command, two for one
command, or a catalog entry with none is a :class:`CatalogError`. Unknown
commands, commands the role may not use, and wrong or missing arguments all
become error observations; nothing a model says crashes the agent.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from dataclasses import dataclass
from types import MappingProxyType, ModuleType
from typing import Any, Iterable, Mapping

from agents.commands.binding import Implementation
from agents.commands.context import CommandContext, CommandError, Finished
from swarm_core.catalog import CATALOG, Catalog, CatalogError

PACKAGE = "agents.commands"


@dataclass(frozen=True)
class Observation:
    """What the model is told after a command ran."""

    command: str
    text: str
    ok: bool = True
    finished: bool = False


class CommandTable:
    """Every command of a catalog with its implementation; dispatches and describes them."""

    def __init__(self, catalog: Catalog, implementations: Iterable[Implementation]) -> None:
        self.catalog = catalog
        bound: dict[str, Implementation] = {}
        for impl in implementations:
            name = impl.command.name
            if name not in catalog:
                raise CatalogError(f"{impl.where} implements {name!r}, which is not in the catalog")
            if catalog.get(name) != impl.command:
                raise CatalogError(f"{impl.where} was bound to another catalog's {name!r} entry")
            if name in bound and bound[name] is not impl:
                raise CatalogError(f"{name!r} is implemented twice: {bound[name].where} and {impl.where}")
            bound[name] = impl
        missing = [n for n in catalog.names() if n not in bound]
        if missing:
            raise CatalogError(f"catalog commands without an implementation: {', '.join(missing)}")
        self.bound: Mapping[str, Implementation] = MappingProxyType(bound)

    def dispatch(self, ctx: CommandContext, name: Any, args: Any,
                 allowed: frozenset[str] | set[str]) -> Observation:
        """Run command ``name`` with ``args`` for ``ctx`` if the role allows it."""
        if not isinstance(name, str) or not name:
            return Observation(str(name), "error: the command name must be a non-empty string", ok=False)
        impl = self.bound.get(name)
        if impl is None or name not in allowed:
            listing = ", ".join(sorted(allowed))
            return Observation(name, f"error: unknown command {name!r}; you may use: {listing}", ok=False)
        if args is None:
            args = {}
        if not isinstance(args, dict):
            return Observation(name, f"error: args of {name} must be an object", ok=False)
        problems = impl.command.arg_problems(args)
        if problems:
            want = ", ".join(impl.command.arg_names) or "no arguments"
            text = f"error: bad arguments for {name} ({'; '.join(problems)}); it takes: {want}"
            return Observation(name, text, ok=False)
        return _run(impl, ctx, args)

    def describe(self, allowed: list[str] | tuple[str, ...]) -> list[str]:
        """Prompt lines for the allowed commands, seed style: ``name: "n", args: ...``."""
        lines = []
        for i, name in enumerate(allowed, 1):
            cmd = self.catalog.get(name)
            if cmd is None:
                continue
            args = ", ".join(f'"{a.name}": "<{a.description}>"' for a in cmd.args)
            lines.append(f'{i}. {cmd.description}: "{name}", args: {args}')
        return lines


def _run(impl: Implementation, ctx: CommandContext, args: dict[str, Any]) -> Observation:
    name = impl.command.name
    try:
        result = impl(ctx, **args)
    except CommandError as exc:
        return Observation(name, f"error: {exc}", ok=False)
    except (TypeError, ValueError) as exc:
        return Observation(name, f"error: bad arguments for {name}: {exc}", ok=False)
    if isinstance(result, Finished):
        return Observation(name, result.result, ok=True, finished=True)
    return Observation(name, "" if result is None else str(result), ok=True)


def discover(package: str = PACKAGE) -> list[Implementation]:
    """Every Implementation defined in the modules of ``package`` (imported here), in module order."""
    pkg = importlib.import_module(package)
    found: list[Implementation] = []
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        found += _implementations(importlib.import_module(f"{package}.{info.name}"))
    return found


def _implementations(module: ModuleType) -> list[Implementation]:
    # an Implementation imported from another module is found there, not here
    return [v for v in vars(module).values()
            if isinstance(v, Implementation) and v.fn.__module__ == module.__name__]


@functools.cache
def builtin() -> CommandTable:
    """The built-in catalog bound to this package's implementations (built once per process)."""
    return CommandTable(CATALOG, discover())


def load_builtin_commands() -> None:
    """Import every command module and check the table (the zygote calls this before forking)."""
    builtin()


def dispatch(ctx: CommandContext, name: Any, args: Any, allowed: frozenset[str] | set[str]) -> Observation:
    """:meth:`CommandTable.dispatch` over the built-in commands."""
    return builtin().dispatch(ctx, name, args, allowed)


def describe(allowed: list[str] | tuple[str, ...]) -> list[str]:
    """:meth:`CommandTable.describe` over the built-in commands."""
    return builtin().describe(allowed)
