"""The seeded fault schedule: which faults, in which order, at which point of the run's progress.

Progress is what the run has done, read from its registry (the sum of the agents' steps plus the
registry's events), never the clock: a fault pinned to progress 800 hits the same moment of the work
on a fast machine and on a slow one. The same seed and duration give the same schedule. Each fault
also carries a draw in [0, 1) that picks its victim among the candidates when it fires, and (for a
SIGSTOP) how much progress the stopped agent sits out.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# fault kind -> weight (every kind is injected at least once)
KINDS = {"agent_kill": 6, "agent_stop": 3, "gateway_kill": 2, "memory_kill": 2, "supervisor_kill": 2}
SECONDS_PER_FAULT = 6.0  # about one fault per this many seconds of the run
SECONDS_PER_SEND = 4.0  # an operator's message (workload, not a fault) this often
FIRST, LAST = 0.05, 0.7  # faults fall between these fractions of the expected progress


@dataclass(frozen=True, order=True)
class Fault:
    """One thing to do when the run's progress reaches ``at``."""

    at: int
    kind: str
    pick: float = 0.0  # chooses the victim among the candidates
    hold: int = 0  # agent_stop: progress the stopped agent sits out


def schedule(seed: int, duration: float, expected: int) -> list[Fault]:
    """The faults and operator messages of a run, in progress order (a pure function of its arguments)."""
    rng = random.Random(seed)
    n = max(len(KINDS), round(duration / SECONDS_PER_FAULT))
    kinds = list(KINDS) + rng.choices(list(KINDS), weights=list(KINDS.values()), k=n - len(KINDS))
    rng.shuffle(kinds)
    faults = [Fault(_point(rng, expected), kind, rng.random(), rng.randint(10, 60)) for kind in kinds]
    sends = [Fault(_point(rng, expected), "send", rng.random()) for _ in range(round(duration / SECONDS_PER_SEND))]
    return sorted(faults + sends)


def _point(rng: random.Random, expected: int) -> int:
    return int(rng.uniform(FIRST, LAST) * expected)


def describe(faults: list[Fault]) -> str:
    """One line per kind: how many are scheduled."""
    counts: dict[str, int] = {}
    for f in faults:
        counts[f.kind] = counts.get(f.kind, 0) + 1
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
