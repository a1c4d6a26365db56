"""Binding a function to its catalog entry: ``@implements("write_to_file")``.

The catalog (``swarm_core.catalog``) declares each command; a module of
``agents/commands`` supplies its function. :func:`implements` checks at
import that the function's keyword parameters (after the context) are
exactly the entry's argument names, with a default exactly for the optional
ones, so an implementation cannot drift from what the model is told.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

from agents.commands.context import CommandContext
from swarm_core.catalog import CATALOG, Catalog, CatalogError, Command

_KEYWORD = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


@dataclass(frozen=True)
class Implementation:
    """A function bound to the catalog entry it implements; calling it calls the function."""

    command: Command
    fn: Callable[..., Any]

    def __call__(self, ctx: CommandContext, **args: Any) -> Any:
        return self.fn(ctx, **args)

    @property
    def where(self) -> str:
        """``module.function``, to name it in errors."""
        return f"{self.fn.__module__}.{self.fn.__qualname__}"


def implements(name: str, catalog: Catalog = CATALOG) -> Callable[[Callable[..., Any]], Implementation]:
    """Bind the decorated function to catalog entry ``name``; CatalogError if they disagree."""
    command = catalog.get(name)
    if command is None:
        raise CatalogError(f"implements({name!r}): the catalog has no such command")

    def bind(fn: Callable[..., Any]) -> Implementation:
        _check_signature(command, fn)
        return Implementation(command, fn)

    return bind


def _check_signature(command: Command, fn: Callable[..., Any]) -> None:
    where = f"{fn.__module__}.{fn.__qualname__} (implements {command.name!r})"
    params = list(inspect.signature(fn).parameters.values())
    if not params or params[0].kind is not inspect.Parameter.POSITIONAL_OR_KEYWORD:
        raise CatalogError(f"{where}: the first parameter must take the CommandContext")
    params = params[1:]
    if any(p.kind not in _KEYWORD for p in params):
        raise CatalogError(f"{where}: arguments must be plain keyword parameters (no *args, **kwargs)")
    names = {p.name for p in params}
    if names != set(command.arg_names):
        raise CatalogError(f"{where}: parameters {sorted(names)} differ from the catalog's "
                           f"arguments {sorted(command.arg_names)}")
    defaulted = {p.name for p in params if p.default is not inspect.Parameter.empty}
    if defaulted != command.optional:
        raise CatalogError(f"{where}: parameters with a default {sorted(defaulted)} differ from the "
                           f"catalog's optional arguments {sorted(command.optional)}")
