"""What a guard is: one limit, with the hooks it needs, deciding actions the supervisor applies.

A guard never sends, signals or writes the registry: each hook returns what
should happen (:class:`Stop`, :class:`Warn`, :class:`Restart`, …) and the
supervisor applies it. Hooks (a guard overrides those it needs):

* ``on_spawn(request)``: a ``start_agent`` before anything is forked → Allow/Deny/None.
* ``on_step(record, report)``: a step about to run its command → Stop/Hold/Warn/None.
* ``on_tick(tick)``: the reconcile tick (every ~0.1 s) → Stops, Refuses.
* ``on_usage(record, usage)``: the gateway's report of a call → Stop/None.
* ``on_exit(exit)``: an agent process was reaped → Restart/GiveUp/None (also: forget the agent).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Protocol, Sequence

from orchestrator.supervisor.approvals import Approval
from orchestrator.supervisor.policy import Allow, Deny, SpawnState
from orchestrator.supervisor.registry import AgentRecord
from swarm_core import messages as m
from swarm_core.status import Status


@dataclass(frozen=True)
class Stop:
    """Stop ``agent_id`` and its subtree with ``reason`` (``status`` for the agent itself)."""

    agent_id: str
    reason: str
    hard: bool = False
    status: Status = Status.KILLED


@dataclass(frozen=True)
class Warn:
    """Tell the agent ``text`` (its command still runs); record ``event`` with ``detail``."""

    agent_id: str
    text: str
    event: str
    detail: str = ""


@dataclass(frozen=True)
class Hold:
    """The step's command waits for a person's approval (``warn``: a Warn that came with it)."""

    agent_id: str
    warn: Warn | None = None


@dataclass(frozen=True)
class Refuse:
    """Deny the pending approval request ``request_id`` with ``reason`` (e.g. ``timeout``)."""

    request_id: str
    reason: str


@dataclass(frozen=True)
class Restart:
    """Start the crashed agent again under its id."""

    agent_id: str


@dataclass(frozen=True)
class GiveUp:
    """The crashed agent stays crashed: record ``detail``, tell its parent ``text``."""

    agent_id: str
    detail: str
    text: str


class AgentView(Protocol):
    """What a guard may read of the agent table."""

    def live(self) -> list[AgentRecord]:
        """Every agent not in a terminal status, parents first."""

    def pending_approvals(self) -> list[Approval]:
        """Every approval request not yet decided, oldest first."""


@dataclass(frozen=True)
class Tick:
    """One reconcile tick: the monotonic and wall-clock times, and the agents to look at."""

    now: float
    wall: float
    agents: AgentView


@dataclass(frozen=True)
class Exit:
    """An agent process was reaped; ``crashed`` when it ended on its own before finishing."""

    record: AgentRecord
    code: int | None
    crashed: bool
    restartable: bool = False  # crashed, and the supervisor is not shutting down


@dataclass(frozen=True)
class SpawnRequest:
    """A ``start_agent`` as the guards see it."""

    state: SpawnState
    name: str
    role: str = ""


class Guard:
    """One limit. Every hook defaults to "no opinion"."""

    def on_spawn(self, request: SpawnRequest) -> Allow | Deny | None:
        return None

    def on_step(self, rec: AgentRecord, step: m.StepReport) -> Stop | Hold | Warn | None:
        return None

    def on_tick(self, tick: Tick) -> Iterable[Stop | Refuse]:
        return ()

    def on_usage(self, rec: AgentRecord, usage: m.Usage) -> Stop | None:
        return None

    def on_exit(self, ex: Exit) -> Restart | GiveUp | None:
        return None


class GuardSet:
    """The list of guards the supervisor walks, in order; it combines their answers."""

    def __init__(self, guards: Sequence[Guard]) -> None:
        self.guards = tuple(guards)

    def find(self, kind: type) -> Guard | None:
        """The first guard of class ``kind`` (e.g. the flood guard the broker gate calls)."""
        return next((g for g in self.guards if isinstance(g, kind)), None)

    def on_spawn(self, request: SpawnRequest) -> Allow | Deny:
        """The first Deny wins; otherwise the Allow a spawn-policy guard gave."""
        allow: Allow | None = None
        for g in self.guards:
            verdict = g.on_spawn(request)
            if isinstance(verdict, Deny):
                return verdict
            if isinstance(verdict, Allow) and allow is None:
                allow = verdict
        return allow if allow is not None else Deny("no spawn policy is configured")

    def on_step(self, rec: AgentRecord, step: m.StepReport) -> Stop | Hold | Warn | None:
        """The first Stop wins; then a Hold (carrying the first Warn); then the first Warn (or None: run it).

        Every guard up to a Stop sees the step (a loop detector counts a held step too).
        """
        warn: Warn | None = None
        hold: Hold | None = None
        for g in self.guards:
            verdict = g.on_step(rec, step)
            if isinstance(verdict, Stop):
                return verdict
            if isinstance(verdict, Hold):
                hold = hold or verdict
            elif verdict is not None and warn is None:
                warn = verdict
        if hold is not None:
            return Hold(hold.agent_id, warn) if warn is not None else hold
        return warn

    def on_tick(self, tick: Tick) -> list[Stop | Refuse]:
        return [action for g in self.guards for action in g.on_tick(tick)]

    def on_usage(self, rec: AgentRecord, usage: m.Usage) -> Stop | None:
        return next((s for g in self.guards if (s := g.on_usage(rec, usage)) is not None), None)

    def on_exit(self, ex: Exit) -> list[Restart | GiveUp]:
        """Every guard hears every exit (to forget the agent); their decisions, in order."""
        return [d for g in self.guards if (d := g.on_exit(ex)) is not None]
