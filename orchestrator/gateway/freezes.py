"""Freezes of the gateway: which agents' model calls are held until thawed."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Freezes:
    """Which agents' calls are held: one agent, all (``all``) but the ``thawed`` ones."""

    all: bool = False
    agents: set[str] = field(default_factory=set)
    thawed: set[str] = field(default_factory=set)  # exceptions to ``all``

    def apply(self, agent: str, frozen: bool) -> None:
        if not agent:
            self.all, self.agents, self.thawed = frozen, set(), set()
        elif frozen:
            self.agents.add(agent)
            self.thawed.discard(agent)
        else:
            self.agents.discard(agent)
            if self.all:
                self.thawed.add(agent)

    def __contains__(self, agent: str) -> bool:
        return agent in self.agents or (self.all and agent not in self.thawed)
