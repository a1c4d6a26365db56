"""The seam between the supervisor and whatever runs its agent processes.

The supervisor's parts (lifecycle, reaper, reconcile) talk to a
:class:`Backend` and never learn which one runs: ``local`` forks agents from
a zygote on this machine, ``ray`` from one zygote per node of a Ray cluster.
A backend:

* ``spawn(spec)`` → :class:`Placed`: the agent's pid (it leads its own
  process group) and the node it runs on (None on the local backend);
* ``signaller``: the reaper's :class:`~orchestrator.supervisor.reaper.Signaller`
  (``send(pgid, sig)``, ``alive(pgid)``) for the groups it started;
* reports what happens to its processes through the ``report`` callable it
  was given, from any thread: :class:`Exited` (exact exit code, or a
  negative signal number; None when nobody could see it) and :class:`Lost`
  (the process can no longer be reached: its node is gone);
* ``adopt(agents)``: takes over processes a previous supervisor started
  (``swarm up --resume``); returns the pids it now owns, each with its node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Protocol

from swarm_core.spec import AgentSpec


@dataclass(frozen=True)
class Placed:
    """Where a new agent runs: its pid (= its process group id) and its node (None: this machine)."""

    pid: int
    node: str | None = None


@dataclass(frozen=True)
class Exited:
    """A process of ours exited: ``code`` ≥ 0 is its exit code, < 0 the signal; None: unknown."""

    pid: int
    code: int | None


@dataclass(frozen=True)
class Lost:
    """A process of ours cannot be reached any more (its node is gone); ``reason`` says why."""

    pid: int
    reason: str


@dataclass(frozen=True)
class Known:
    """An agent process a previous supervisor started: what ``adopt`` is given."""

    agent_id: str
    pid: int
    node: str | None
    created_at: float  # wall time the record was made: a process started earlier is not ours


Report = Callable[[Exited | Lost], None]


class Backend(Protocol):
    """What the supervisor needs of the thing that runs agent processes."""

    kind: str
    signaller: Any  # orchestrator.supervisor.reaper.Signaller

    def start(self) -> None:
        """Be ready to spawn (start the zygote, or connect to the cluster and start the hosts)."""

    def spawn(self, spec: AgentSpec) -> Placed:
        """Start one agent process; raise SpawnError when it cannot be started."""

    def gone(self, pid: int) -> bool:
        """Whether process ``pid`` (an adopted one, whose exit nobody reports) has ended."""

    def adopt(self, agents: Iterable[Known]) -> dict[int, str | None]:
        """Take over live processes of a previous supervisor; return the pids now owned and their nodes."""

    def term_grace(self, grace: float) -> float:
        """Seconds from SIGTERM to SIGKILL on the stop ladder (``grace`` unless the backend says)."""

    def facts(self) -> dict[str, Any]:
        """What the registry should remember about this backend (for ``swarm down`` after a crash)."""

    def stop(self) -> None:
        """Ordered: stop spawning and release what the backend started (agents are stopped before)."""

    def kill(self) -> None:
        """At once and idempotent: tear down whatever the backend started."""
