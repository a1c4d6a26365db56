"""The local backend: agents forked from one zygote on this machine (the default).

Each agent's bus credential is issued here, by the swarm's keyring, and
travels to the zygote inside its spec (in memory).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Iterable

from bus.keyring import Keyring
from orchestrator.supervisor.backends.base import Exited, Known, Placed, Report
from orchestrator.supervisor.reaper import GroupSignaller, ProcessSignaller
from orchestrator.supervisor.recovery import same_process
from orchestrator.supervisor.spawner import Spawner
from swarm_core.peers import PeerKind
from swarm_core.spec import AgentSpec


class LocalBackend:
    """Today's zygote and ``killpg``: every agent is a process group of this machine."""

    kind = "local"

    def __init__(self, run_dir: Path, report: Report, log: Any = None, keys: Keyring | None = None) -> None:
        self.keys = keys if keys is not None else Keyring()
        self.spawner = Spawner(Path(run_dir), lambda pid, code: report(Exited(pid, code)), log)
        self.signaller = GroupSignaller()

    def start(self) -> None:
        """Start the zygote (it preloads the agent runtime)."""
        self.spawner.start()

    def spawn(self, spec: AgentSpec) -> Placed:
        """Fork the agent from the zygote with a fresh credential in its spec (SpawnError when it cannot)."""
        cred = self.keys.issue(spec.agent_id, PeerKind.AGENT, one_process=True)
        return Placed(self.spawner.spawn(dataclasses.replace(spec, credential=cred.to_dict())), None)

    def gone(self, pid: int) -> bool:
        """This machine's process table says so (a zombie counts as gone)."""
        return not ProcessSignaller().alive(pid)

    def adopt(self, agents: Iterable[Known]) -> dict[int, str | None]:
        """The agents whose process is still the one started for them (the reconcile tick sees them exit)."""
        return {a.pid: None for a in agents if a.pid and same_process(a.pid, a.created_at)}

    def term_grace(self, grace: float) -> float:
        """The ladder's own grace: SIGTERM, then SIGKILL ``grace`` seconds later."""
        return grace

    def facts(self) -> dict[str, Any]:
        """Nothing beyond the kind: ``swarm down`` finds local agents by their pids."""
        return {"kind": self.kind}

    def stop(self) -> None:
        """Close the zygote's stdin (it exits; agents are not touched)."""
        self.spawner.stop()

    def kill(self) -> None:
        """Kill the zygote at once."""
        self.spawner.kill()
