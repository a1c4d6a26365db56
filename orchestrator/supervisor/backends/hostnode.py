"""One node's agent host: its zygote, its agents' keys, signals and exits (plain Python, no Ray).

The Ray backend runs one :class:`NodeHost` per node inside a host actor
(``onray/actor.py``); everything here is testable without Ray. The host:

* starts a zygote on its node (the same preloaded fork server and kernel
  sandbox as the local backend) and forks agents from it;
* makes each agent's CurveZMQ key pair on the node and hands back only the
  public key, which the supervisor enrolls in the swarm's keyring
  (``bus.keyring.Keyring.enroll``) like any credential it issues; the
  secret stays in this host's memory until it goes, inside the spec, to the
  zygote that forks the agent (never a file, never the network);
* signals only process groups it owns (spawned or adopted); a SIGTERM is
  followed, ``kill_timeout`` seconds later, by a SIGKILL to the groups still
  alive, decided on the node itself;
* numbers every exit (exact code, or -signal) in an :class:`ExitLog` the
  supervisor long-polls; an adopted process (not its child) ends with code
  None, seen through a pidfd;
* after a restart of its actor, adopts the agents that survived (they lead
  their own sessions) and sweeps those the supervisor no longer wants.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import psutil

from bus.credentials import Credential
from orchestrator.supervisor.backends.exitlog import ExitLog, PidWatch
from orchestrator.supervisor.reaper import group_alive, signal_group
from orchestrator.supervisor.spawner import Spawner, SpawnError
from swarm_core.spec import AgentSpec


def created(pid: int) -> float | None:
    """When live process ``pid`` started (wall time), None when it is gone or a zombie."""
    try:
        proc = psutil.Process(pid)
        return None if proc.status() == psutil.STATUS_ZOMBIE else proc.create_time()
    except psutil.NoSuchProcess:
        return None


class NodeHost:
    """Spawns, signals and watches the agent processes of one node."""

    def __init__(self, run_dir: str, node: str, kill_timeout: float, log: Any = None,
                 spawner: Callable[..., Any] = Spawner) -> None:
        self.run_dir = Path(run_dir)
        self.node = node
        self.kill_timeout = kill_timeout
        self.incarnation = uuid.uuid4().hex[:12]  # a restarted host is a new incarnation
        self.exits = ExitLog()
        self._owned: dict[int, float] = {}  # pgid -> its start time (a reused pid is not ours)
        self._secrets: dict[str, tuple[str, str]] = {}  # agent id -> key pair made here, until its spawn
        self._lock = threading.Lock()
        self._watch = PidWatch(lambda pid: self._ended(pid, None))
        self._spawner = spawner(self.run_dir, self._ended, log, name=f"zygote-{node}")

    def start(self) -> dict[str, Any]:
        """Start the zygote; return :meth:`info`."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._spawner.start()
        return self.info()

    def info(self) -> dict[str, Any]:
        """Who this host is: node, pid, incarnation and how many agents it owns."""
        with self._lock:
            owned = len(self._owned)
        return {"node": self.node, "pid": os.getpid(), "incarnation": self.incarnation, "agents": owned,
                "hostname": os.uname().nodename}

    def sees(self, path: str) -> bool:
        """Whether ``path`` exists on this node (the supervisor checks the workspace is shared)."""
        return os.path.exists(path)

    def issue_key(self, agent_id: str) -> dict[str, str]:
        """A fresh CurveZMQ key pair for ``agent_id``, kept in this host's memory: its public key (z85)."""
        import zmq

        public, secret = zmq.curve_keypair()
        with self._lock:
            self._secrets[agent_id] = (public.decode(), secret.decode())
        return {"public": public.decode()}

    def spawn(self, spec: dict[str, Any]) -> int:
        """Fork the agent of ``spec`` (a spec dict) from the zygote, its credential completed with the
        secret made here; its pid (SpawnError if it cannot, or if its credential is not the key made here).
        """
        agent = AgentSpec.from_dict(spec)
        agent = dataclasses.replace(agent, credential=self._complete(agent.agent_id, agent.credential))
        pid = self._spawner.spawn(agent)
        with self._lock:
            self._owned[pid] = created(pid) or time.time()
        return pid

    def _complete(self, agent_id: str, raw: dict[str, str]) -> dict[str, str]:
        with self._lock:
            public, secret = self._secrets.pop(agent_id, ("", ""))
        cred = Credential.from_dict(raw, f"credential of {agent_id}") if raw else None
        if cred is None or not public or cred.public != public:
            raise SpawnError(f"no key pair was made on node {self.node} for {agent_id}'s credential")
        return dataclasses.replace(cred, secret=secret).to_dict()

    def _ended(self, pid: int, code: int | None) -> None:
        with self._lock:
            self._owned.pop(pid, None)
        self.exits.add(pid, code)

    def signal(self, pgids: list[int], sig: int) -> list[bool]:
        """Send ``sig`` to each owned group (never to another); a SIGTERM escalates after ``kill_timeout``."""
        with self._lock:
            ours = [p in self._owned for p in pgids]
        sent = [own and signal_group(p, sig) for p, own in zip(pgids, ours)]
        if sig == signal.SIGTERM and any(sent):
            due = [p for p, s in zip(pgids, sent) if s]
            timer = threading.Timer(self.kill_timeout, self._escalate, [due])
            timer.daemon = True
            timer.start()
        return sent

    def _escalate(self, pgids: list[int]) -> None:
        """SIGKILL the groups a SIGTERM did not end in time (still ours and still alive)."""
        with self._lock:
            due = [p for p in pgids if p in self._owned]
        for pgid in due:
            if group_alive(pgid):
                signal_group(pgid, signal.SIGKILL)

    def poll(self, incarnation: str | None, cursor: int, wait: float) -> dict[str, Any]:
        """Exits after ``cursor`` of ``incarnation`` (of another one: all), waiting up to ``wait`` s."""
        events = self.exits.after(cursor if incarnation == self.incarnation else 0, wait)
        return {"incarnation": self.incarnation, "events": [list(e) for e in events]}

    def adopt(self, known: list[list[float]]) -> dict[str, list[int]]:
        """Own the live processes among ``known`` ([pid, started no earlier than]); the others are gone."""
        adopted, gone = [], []
        for pid, since in known:
            pid = int(pid)
            with self._lock:
                mine = pid in self._owned  # still this incarnation's child: its zygote reports the exit
            if mine:
                adopted.append(pid)
                continue
            started = created(pid)
            if started is not None and started >= since - 1.0 and self._watch.watch(pid):
                with self._lock:
                    self._owned[pid] = started
                adopted.append(pid)
            else:
                gone.append(pid)
        return {"adopted": adopted, "gone": gone}

    def sweep(self, known: list[list[float]]) -> list[int]:
        """SIGKILL the groups of ``known`` ([pid, started no earlier than]) still alive: nobody wants them."""
        killed = []
        for pid, since in known:
            started = created(int(pid))
            if started is not None and started >= since - 1.0 and signal_group(int(pid), signal.SIGKILL):
                killed.append(int(pid))
        return killed

    def shutdown(self, kill_agents: bool = True) -> list[int]:
        """Stop the zygote; with ``kill_agents``, SIGKILL every group still owned first. Returns those."""
        with self._lock:
            left = list(self._owned)
        if kill_agents:
            for pgid in left:
                signal_group(pgid, signal.SIGKILL)
        self._spawner.stop()
        self._watch.close()
        self.exits.wake()
        return left
