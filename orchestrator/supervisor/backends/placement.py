"""Which node a new agent goes to: ``spread``, ``pack`` or ``{ROLE: RESOURCE}`` (a pure function).

Every node offers a number of agent slots (its ``swarm_slot`` resource when
it declares one, else ``backend.agents_per_node``). ``spread`` picks the
node with the most free slots, ``pack`` the first node (in a stable order)
with a free slot; a role named in a ``{ROLE: RESOURCE}`` mapping goes only to
nodes offering RESOURCE, spread among them, and any other role is spread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from orchestrator.supervisor.spawner import SpawnError

SLOT_RESOURCE = "swarm_slot"  # a node may declare how many agents it takes


@dataclass(frozen=True)
class NodeView:
    """What placement knows of a node: its name, slots, agents placed, resources, reachability."""

    node: str
    capacity: int
    used: int
    resources: frozenset[str]
    ready: bool = True  # its host answers

    @property
    def free(self) -> int:
        return self.capacity - self.used


class NoRoom(SpawnError):
    """No node can take the agent."""


def capacity(resources: Mapping[str, float], agents_per_node: int) -> int:
    """A node's slots: its ``swarm_slot`` resource if it has one, else ``agents_per_node``."""
    slots = resources.get(SLOT_RESOURCE)
    return int(slots) if slots is not None else agents_per_node


def choose(nodes: list[NodeView], role: str, placement: str | Mapping[str, str]) -> str:
    """The node for a new agent of ``role``; NoRoom (saying why) when none fits."""
    wanted = placement.get(role) if isinstance(placement, Mapping) else None
    fits = [n for n in nodes if n.ready and (wanted is None or wanted in n.resources)]
    if not fits:
        where = f"offering resource {wanted!r}" if wanted else "with a ready host"
        raise NoRoom(f"no node {where} for role {role!r}")
    free = [n for n in fits if n.free > 0]
    if not free:
        raise NoRoom(f"every node for role {role!r} is full ({sum(n.capacity for n in fits)} agent slots)")
    if placement == "pack":
        return free[0].node
    return max(free, key=lambda n: (n.free, -free.index(n))).node
