"""Fakes for the supervisor's parts: a clock, a signaller, a spawner and a bus client, no processes.

``SupervisorRig`` wires the real parts (agent table on a registry file under
``tmp_path``, reaper, guards, lifecycle, handlers, reconciler) around these
fakes the way the service does, so handler tests drive the supervisor with
messages and a clock.
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Any

import yaml

from bus.client import DEFERRED
from bus.keyring import Keyring
from bus.protocol import Kind, Message, make_header
from orchestrator.config import parse_config
from orchestrator.supervisor.backends.base import Placed
from orchestrator.supervisor.budgets import child_budget
from orchestrator.supervisor.handlers import routes
from orchestrator.supervisor.parts import assemble
from orchestrator.supervisor.reaper import Reaper, Timings
from orchestrator.supervisor.reconcile import Reconciler
from orchestrator.supervisor.registry import AgentRecord
from orchestrator.supervisor.spawner import SpawnError
from orchestrator.supervisor.table import AgentTable
from swarm_core import authz
from swarm_core import messages as m
from swarm_core.errors import PolicyDenied, SwarmError
from swarm_core.tracing import CURRENT


class NullLog:
    """A structlog-shaped logger that records the events it is given."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, level: str):
        return lambda event, **kw: self.events.append((event, kw))


class FakeClock:
    """A clock that moves only when the test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeSignaller:
    """Records signals; targets live until the test (or a SIGKILL, with ``kill_dies``) ends them."""

    def __init__(self, kill_dies: bool = False) -> None:
        self.sent: list[tuple[int, int]] = []
        self.living: set[int] = set()
        self.kill_dies = kill_dies

    def send(self, target: int, sig: int) -> bool:
        if target not in self.living:
            return False
        self.sent.append((target, int(sig)))
        if self.kill_dies and sig == 9:
            self.living.discard(target)
        return True

    def alive(self, target: int) -> bool:
        return target in self.living

    def signals(self, target: int) -> list[int]:
        return [s for t, s in self.sent if t == target]


class FakeSpawner:
    """A backend that hands out pids (the signaller then sees them alive) on ``node``, or fails when told to;
    like the local backend it issues each agent's credential through ``keys`` into the spec."""

    def __init__(self, signaller: FakeSignaller, node: str | None = None, keys: Keyring | None = None) -> None:
        self.signaller = signaller
        self.node = node
        self.keys = keys if keys is not None else Keyring()
        self.specs: list[Any] = []
        self.fail: str | None = None
        self._pids = itertools.count(5001)

    def spawn(self, spec: Any) -> Placed:
        cred = self.keys.issue(spec.agent_id, "agent", one_process=True)
        if self.fail:
            raise SpawnError(self.fail)
        spec = dataclasses.replace(spec, credential=cred.to_dict())
        self.specs.append(spec)
        pid = next(self._pids)
        self.signaller.living.add(pid)
        return Placed(pid, self.node)


class FakeClient:
    """The bus-client port: records what the supervisor sends and replies."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []
        self.replies: list[tuple[Message, Any]] = []
        self.errors: list[tuple[Message, SwarmError]] = []

    def send(self, dst: str, body: Any) -> None:
        self.sent.append((dst, body))

    def reply(self, request: Message, body: Any) -> None:
        self.replies.append((request, body))

    def reply_error(self, request: Message, err: SwarmError) -> None:
        self.errors.append((request, err))

    def to(self, dst: str, kind: type | None = None) -> list[Any]:
        """Bodies sent to ``dst`` (of class ``kind`` if given)."""
        return [b for d, b in self.sent if d == dst and (kind is None or isinstance(b, kind))]


CONFIG: dict[str, Any] = {
    "name": "t", "goal": "test goal", "root": "manager",
    "llm": {"provider": "replay", "cassette": "cassette.yaml"}, "memory": False,
    "limits": {"max_depth": 2, "max_agents": 6, "max_children": 2, "max_steps": 5, "max_wall_seconds": 60},
    "agents": {
        "manager": {"role": "a manager", "commands": ["start_agent", "task_complete"],
                    "can_start": ["worker"]},
        "worker": {"role": "a worker", "commands": ["start_agent", "task_complete"], "can_start": ["worker"],
                   "restart": {"policy": "on-crash", "max_restarts": 2, "period_seconds": 60}},
    },
}


class SupervisorRig:
    """The supervisor's parts and handlers around fakes; ``send`` plays a message to a handler."""

    def __init__(self, tmp_path: Path, limits: dict[str, Any] | None = None,
                 extra: dict[str, Any] | None = None, tracing: Any = None) -> None:
        cfg_dict = {**CONFIG, "limits": {**CONFIG["limits"], **(limits or {})}, **(extra or {})}
        self.cfg = parse_config(yaml.safe_dump(cfg_dict), str(tmp_path / "swarm.yaml"))
        self.run_dir = tmp_path / "run"
        self.run_dir.mkdir(exist_ok=True)
        self.clock, self.wall = FakeClock(), FakeClock(1_700_000_000.0)
        self.signaller = FakeSignaller()
        self.keys = Keyring()
        self.spawner = FakeSpawner(self.signaller, keys=self.keys)
        self.client = FakeClient()
        self.log = NullLog()
        self.shutdowns: list[str] = []
        self.table = AgentTable(self.run_dir / "registry.db", wall=self.wall)
        self.reaper = Reaper(self.clock, self.signaller, Timings(2.0, 2.0, 5.0))
        self.parts = assemble(self.cfg, self.run_dir, self.table, self.client, self.spawner, self.reaper,
                              self.log, endpoint="ipc:///nowhere", heartbeat_interval=1.0, liveness=3,
                              shutdown=self.shutdowns.append, shutting_down=lambda: bool(self.shutdowns),
                              keys=self.keys, tracing=tracing, clock=self.clock, wall=self.wall)
        self.handlers = routes(self.parts)
        self.authorize = authz.for_dispatch(self.table.is_below)
        self.reconciler = Reconciler(self.parts, gone=lambda pid: not self.signaller.alive(pid))

    def close(self) -> None:
        self.table.close()

    def message(self, src: str, body: Any, kind: Kind = Kind.REQUEST, traceparent: str = "") -> Message:
        return Message(make_header(kind, body.TYPE, src, "supervisor", traceparent=traceparent), body)

    def send(self, src: str, body: Any, kind: Kind = Kind.REQUEST, traceparent: str = "") -> Any:
        """Run the handler of ``body`` as if ``src`` sent it; its reply body (DEFERRED, or it raises).

        The supervisor's dispatch runs the authorization table first (with
        the agent tree): a refusal raises PolicyDenied here, as its reply
        would carry it. Like the bus client, the handler runs inside the
        sender's span (``traceparent``).
        """
        msg = self.message(src, body, kind, traceparent)
        reason = self.authorize(msg)
        if reason is not None:
            raise PolicyDenied(reason)
        token = CURRENT.set(traceparent)
        try:
            return self.handlers[type(body)](msg)
        finally:
            CURRENT.reset(token)

    def root(self) -> AgentRecord:
        """Spawn the root agent and make it ready, as the service does at start-up."""
        root = self.cfg.root
        tokens, usd = child_budget(self.cfg.agents[root].budget, 0)
        rec = self.table.add(AgentRecord(id=root, name=root, role=root, parent=None, depth=0, task="goal",
                                         budget_tokens=tokens, budget_usd=usd))
        self.parts.life.spawn(rec)
        self.send(root, m.AgentReady(root, 1), Kind.EVENT)
        return self.table.get(root)  # type: ignore[return-value]

    def start(self, parent: str, name: str, role: str = "worker") -> AgentRecord:
        """``parent`` starts ``name``; the new agent becomes ready; return its record."""
        assert self.send(parent, m.StartAgent(name, f"task of {name}", role=role)) is DEFERRED
        agent_id = self.spawner.specs[-1].agent_id
        self.send(agent_id, m.AgentReady(agent_id, 1), Kind.EVENT)
        return self.table.get(agent_id)  # type: ignore[return-value]

    def status(self, agent_id: str) -> str:
        rec = self.table.get(agent_id)
        return rec.status if rec else "(none)"

    def inbox(self, agent_id: str) -> list[str]:
        return [b.text for b in self.client.to(agent_id, m.InboxMessage)]
