"""The command catalog: every command an agent may use, declared once as data.

Each :class:`Command` holds its name, the seed's short description, its
arguments (:class:`Arg`: name, description, JSON type, optional or not, an
optional maximum length or pattern for the answer grammar), the
:class:`Port` s it needs and an optional worked :class:`Episode` for small
models. Everything else reads this: ``agents/commands`` binds one function
to each entry (checked at import), the gateway's answer schema, grammar and
few-shot prompt render it, and the config validator checks role command
names against it. :data:`CATALOG` is the built-in set.
"""

from swarm_core.catalog.entries import CATALOG
from swarm_core.catalog.episodes import delegation
from swarm_core.catalog.model import JSON_TYPES, Arg, Catalog, CatalogError, Command, Episode, Port, Step

__all__ = ["CATALOG", "JSON_TYPES", "Arg", "Catalog", "CatalogError", "Command", "Episode", "Port", "Step",
           "delegation"]
