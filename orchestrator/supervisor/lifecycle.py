"""Agent lifecycle in the supervisor: spawn, stop (ordered), kill (hard), reap.

Stopping is ``stop message → SIGTERM to the process group → grace → SIGKILL``;
a hard kill is SIGKILL to the group at once. The registry records the
intent (status ``killed`` with a reason) before any signal is sent, so the
exit that follows is not mistaken for a crash.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from orchestrator.supervisor.registry import AgentRecord
from orchestrator.supervisor.spawner import SIGKILL, SIGTERM, SpawnError, group_alive, signal_group
from orchestrator.supervisor.zygote import EXIT_OUT_OF_MEMORY
from swarm_core import messages as m
from swarm_core.errors import SwarmError
from swarm_core.spec import AgentSpec, RLimits

if TYPE_CHECKING:
    from orchestrator.supervisor.service import Supervisor


def describe_exit(code: int) -> str:
    """A reason for an unexpected exit: ``exit code N`` or the signal's name."""
    if code == EXIT_OUT_OF_MEMORY:
        return f"exit code {code} (out of memory: memory rlimit)"
    if code >= 0:
        return f"exit code {code}"
    import signal

    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    hints = {"SIGXCPU": "cpu rlimit", "SIGKILL": "killed (SIGKILL; memory or cpu rlimit?)",
             "SIGSEGV": "segfault", "SIGABRT": "abort"}
    return f"{name}" + (f" ({hints[name]})" if name in hints and name != "SIGKILL" else
                        (" (killed from outside or by an rlimit)" if name == "SIGKILL" else ""))


class Lifecycle:
    """Spawning and stopping agents for one supervisor."""

    def __init__(self, sup: "Supervisor", grace: float = 2.0) -> None:
        self.sup = sup
        self.grace = grace
        self.hard = False  # set by a second Ctrl-C: every stop becomes a kill
        self._kills: dict[int, tuple[str, float]] = {}  # pgid -> (stage, next action at)
        self._by_pid: dict[int, str] = {}
        self._adopted: set[int] = set()  # agents of a previous supervisor: not our zygote's children

    # ------------------------------------------------------------ spawning

    def spec_for(self, rec: AgentRecord, prompt: str = "") -> AgentSpec:
        cfg = self.sup.cfg
        role = cfg.agents[rec.role]
        lim = cfg.limits
        run_dir = self.sup.run_dir
        return AgentSpec(
            agent_id=rec.id, name=rec.name, role_name=rec.role, role=role.role, task=rec.task,
            commands=tuple(role.commands), goals=tuple(role.goals), can_start=tuple(role.can_start),
            examples=tuple(dict(e) for e in role.examples), prompt=prompt, parent=rec.parent,
            endpoint=self.sup.endpoint, run_dir=str(run_dir),
            workspace=cfg.workspace, per_agent_workspace=cfg.per_agent_workspace,
            heartbeat_interval=self.sup.heartbeat_interval, liveness=self.sup.liveness,
            llm_timeout=max(600.0, float(lim.max_wall_seconds)), max_tokens=cfg.llm.max_tokens,
            memory=cfg.memory,
            settings={"idle_wait_seconds": lim.idle_wait_seconds, "message_timeout": lim.message_timeout,
                      **cfg.tools.model_dump(), "sandbox": cfg.safety.sandbox},
            stdout=str(run_dir / "logs" / f"{rec.id}.out"),
            rlimits=RLimits(memory_mb=lim.memory_mb, cpu_seconds=lim.cpu_seconds, open_files=lim.open_files),
        )

    def spawn(self, rec: AgentRecord, prompt: str = "") -> int:
        """Fork the agent's process from the zygote and record its pid."""
        try:
            pid = self.sup.spawner.spawn(self.spec_for(rec, prompt))
        except SpawnError as exc:
            self.sup.registry.update(rec.id, status="failed", reason=f"spawn failed: {exc.message}",
                                     ended_at=time.time())
            raise
        self._by_pid[pid] = rec.id
        self.sup.registry.update(rec.id, pid=pid)
        self.sup.publish(rec.id, "spawned", "starting")
        self.sup.log.info("agent_spawned", agent=rec.id, pid=pid, parent=rec.parent, depth=rec.depth)
        return pid

    # ------------------------------------------------------------ stopping

    def stop_subtree(self, agent_id: str, reason: str, *, hard: bool = False,
                     status: str = "killed") -> int:
        """Stop an agent and all its descendants; tell the top one's parent."""
        recs = [r for r in self.sup.registry.subtree(agent_id) if not r.terminal]
        for rec in reversed(recs):  # children first: nobody is left without a parent
            self._stop_one(rec, reason, hard=hard, status=status if rec.id == agent_id else "killed")
        if recs and recs[0].id == agent_id and recs[0].parent:
            self.sup.tell(recs[0].parent, "supervisor",
                          f"agent {agent_id} was stopped: {reason}"
                          + (f" (with {len(recs) - 1} sub-agents)" if len(recs) > 1 else ""))
        return len(recs)

    def stop_everything(self, reason: str, *, hard: bool = False) -> int:
        recs = [r for r in self.sup.registry.all() if not r.terminal]
        for rec in reversed(recs):
            self._stop_one(rec, reason, hard=hard, status="killed")
        return len(recs)

    def _stop_one(self, rec: AgentRecord, reason: str, *, hard: bool, status: str) -> None:
        self.sup.registry.update(rec.id, status=status, reason=reason, ended_at=time.time())
        self.sup.block(rec.id)
        self.sup.publish(rec.id, status, status, reason)
        self.sup.log.info("agent_stopping", agent=rec.id, reason=reason, hard=hard or self.hard)
        pid = rec.pid
        if not pid:
            return
        if hard or self.hard:
            signal_group(pid, SIGKILL)
            self._kills[pid] = ("kill", time.monotonic() + 5.0)
            return
        if self.sup.client is not None:
            try:
                self.sup.client.send(rec.id, m.Stop(reason))
            except SwarmError:
                pass
        self._kills[pid] = ("stop", time.monotonic() + self.grace)

    def adopt(self, agent_id: str, pid: int) -> None:
        """Take over an agent process left by a previous supervisor (resume)."""
        self._by_pid[pid] = agent_id
        self._adopted.add(pid)

    def poll_adopted(self) -> None:
        """Adopted agents are not reaped by our zygote: notice their exit by looking."""
        import psutil

        for pid in list(self._adopted):
            try:
                gone = psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:
                gone = True
            if gone:
                self._adopted.discard(pid)
                self.on_exit(pid, None)

    def escalate(self, now: float) -> None:
        """Move pending stops along: stop → SIGTERM → SIGKILL (called every tick)."""
        for pgid, (stage, at) in list(self._kills.items()):
            if now < at:
                continue
            if not group_alive(pgid):
                self._kills.pop(pgid, None)
            elif stage == "stop":
                signal_group(pgid, SIGTERM)
                self._kills[pgid] = ("term", now + self.grace)
            elif stage == "term":
                signal_group(pgid, SIGKILL)
                self._kills[pgid] = ("kill", now + 5.0)
            else:
                signal_group(pgid, SIGKILL)
                self._kills[pgid] = ("kill", now + 5.0)

    def pending(self) -> int:
        return len(self._kills)

    # ------------------------------------------------------------ reaping

    def on_exit(self, pid: int, code: int | None) -> None:
        """The zygote reaped ``pid``: a live agent that exits on its own has crashed."""
        self._kills.pop(pid, None)
        agent_id = self._by_pid.pop(pid, None)
        if agent_id is None:
            return
        rec = self.sup.registry.get(agent_id)
        if rec is None:
            return
        self.sup.log.info("agent_exited", agent=agent_id, pid=pid, code=code, status=rec.status)
        if rec.terminal:
            return
        reason = describe_exit(code) if code is not None else "exited (adopted process; exit code unknown)"
        self.sup.registry.update(agent_id, status="crashed", reason=reason, ended_at=time.time())
        self.sup.block(agent_id)
        self.sup.publish(agent_id, "crashed", "crashed", reason)
        self.sup.log.warning("agent_crashed", agent=agent_id, reason=reason)
        if rec.parent:
            self.sup.tell(rec.parent, "supervisor", f"agent {agent_id} crashed: {reason}")
        for child in self.sup.registry.children(agent_id):
            if not child.terminal:
                self.stop_subtree(child.id, "parent_crashed")
        if rec.parent is None:
            self.sup.registry.set_meta("root_status", "crashed")
        self.sup.on_crash(rec, code if code is not None else -1)

    # ------------------------------------------------------------ freeze

    def freeze(self, agent_id: str, frozen: bool, reason: str) -> int:
        """Freeze or thaw one agent (or all when ``agent_id`` is empty); the gateway holds calls."""
        reg = self.sup.registry
        if agent_id:
            rec = reg.get(agent_id)
            if rec is None:
                from swarm_core.errors import NotFound

                raise NotFound(f"no agent {agent_id!r}")
            recs = [rec] if not rec.terminal else []
        else:
            recs = [r for r in reg.all() if not r.terminal]
        for rec in recs:
            if frozen:
                reg.update(rec.id, status="frozen", reason=f"frozen: {reason}")
            elif rec.status == "frozen":
                reg.update(rec.id, status="running", reason=None)
            self.sup.publish(rec.id, "frozen" if frozen else "thawed", "frozen" if frozen else "running",
                             reason)
        if self.sup.client is not None:
            try:
                self.sup.client.send("gateway", m.Freeze(agent_id, frozen, reason))
            except SwarmError:
                pass
        return len(recs)

    def mark_frozen(self, agent_id: str, reason: str) -> None:
        """Record a freeze decided elsewhere (the gateway's breaker already holds the calls)."""
        self.sup.registry.update(agent_id, status="frozen", reason=reason)
        self.sup.publish(agent_id, "frozen", "frozen", reason)

    # ------------------------------------------------------------ teardown

    def stop_all(self, reason: str) -> None:
        """Ordered and bounded: stop every live agent, escalate, wait until all are gone."""
        sup = self.sup
        self.stop_everything(reason, hard=self.hard)
        pids = set(self._by_pid) | set(self._kills)  # only processes not yet reaped
        deadline = time.monotonic() + 2 * self.grace + 3.0
        client = sup.client
        while time.monotonic() < deadline:
            self.escalate(time.monotonic())
            alive = [p for p in pids if group_alive(p)]
            if not alive:
                return
            if client is not None:
                client.poll(0.05)
            else:
                time.sleep(0.05)
        for p in pids:
            signal_group(p, SIGKILL)
