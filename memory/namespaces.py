"""Memory namespace names: ``shared`` (one per swarm) and ``agent:<id>`` (private).

Contract: :func:`check_namespace` returns a valid name unchanged or raises
:class:`InvalidRequest` saying what a namespace must look like. An agent id
in a namespace follows the swarm's id syntax (letters, digits, ``_ . -``,
starting with a letter or digit, at most 128 characters).
"""

from __future__ import annotations

import re

from swarm_core.errors import InvalidRequest

SHARED = "shared"
AGENT_PREFIX = "agent:"
_PATTERN = re.compile(r"(?:shared|agent:[A-Za-z0-9][A-Za-z0-9_.-]{0,127})\Z")


def agent_namespace(agent_id: str) -> str:
    """The private namespace of agent ``agent_id``."""
    return check_namespace(AGENT_PREFIX + agent_id)


def is_namespace(name: object) -> bool:
    """True when ``name`` is a syntactically valid namespace."""
    return isinstance(name, str) and _PATTERN.match(name) is not None


def check_namespace(name: object) -> str:
    """Return ``name`` if it is a valid namespace, else raise InvalidRequest."""
    if not is_namespace(name):
        raise InvalidRequest(
            f"unknown memory namespace {name!r}: use {SHARED!r} or 'agent:<agent id>'",
            field="namespace", namespace=str(name)[:200],
        )
    return name  # type: ignore[return-value]
