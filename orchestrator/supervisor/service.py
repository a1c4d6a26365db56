"""The supervisor process: broker host, registry owner, the only spawner and reaper.

Its loop polls the bus and then reconciles on a tick: it
escalates pending kills, enforces wall-time limits, watches the stop file,
and restarts crashed services. Events (an exit, a dead peer) only bring the
next tick forward. Signal handlers record intent; the loop acts (§8).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from bus import auth
from bus import messages as bm
from bus.broker import Broker
from bus.client import DEFERRED, BusClient
from bus.events import EventSubscriber
from bus.protocol import Header, Kind, Message
from bus.sockets import ipc_endpoint, secure_dir
from orchestrator.config import SwarmConfig
from orchestrator.supervisor import policy
from orchestrator.supervisor.floodgate import FloodGate
from orchestrator.supervisor.lifecycle import Lifecycle
from orchestrator.supervisor.loopdetect import LoopDetector, Verdict
from orchestrator.supervisor.registry import AgentRecord, Registry, ps_view
from orchestrator.supervisor.services import Services
from orchestrator.supervisor.spawner import Spawner
from swarm_core import messages as m
from swarm_core import peers
from swarm_core.defaults import HEARTBEAT_INTERVAL, LIVENESS, STOP_GRACE
from swarm_core.errors import NotFound, PolicyDenied, SwarmError

TICK = 0.1
STOP_FILE = "STOP"


class Supervisor:
    """One swarm's supervisor."""

    def __init__(self, cfg: SwarmConfig, run_dir: Path, log: Any, *, goal: str | None = None,
                 heartbeat_interval: float = HEARTBEAT_INTERVAL, liveness: int = LIVENESS,
                 grace: float = STOP_GRACE,
                 resume: bool = False) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.log = log
        self.goal = goal or cfg.goal
        self.heartbeat_interval = heartbeat_interval
        self.liveness = liveness
        if cfg.bus.transport == "tcp":
            self.endpoint = f"tcp://{cfg.bus.host}:{cfg.bus.port or '*'}"
            self.pub_endpoint = f"tcp://{cfg.bus.host}:{cfg.bus.pub_port or '*'}"
        else:
            self.endpoint = ipc_endpoint(self.run_dir, "bus")
            self.pub_endpoint = ipc_endpoint(self.run_dir, "events")
        self.registry = Registry(self.run_dir / "registry.db")
        self.spawner = Spawner(self.run_dir, self._on_exit_threadsafe, log)
        self.broker: Broker | None = None
        self.client: BusClient | None = None
        self.services: Services | None = None
        self.life = Lifecycle(self, grace=grace)
        self._blocked: frozenset[str] = frozenset()
        self._pending_ready: dict[str, tuple[Message | None, float]] = {}
        self._loops: dict[str, LoopDetector] = {}
        self._restarts: dict[str, list[float]] = {}
        self._next_wall_check = 0.0
        self.flood = FloodGate(cfg.limits.bus_messages_per_second)
        self._shutdown: str | None = None
        self._sigints = 0
        self._events_thread: threading.Thread | None = None
        self._events_stop = threading.Event()
        self.started = time.time()
        self.resume = resume

    # ------------------------------------------------------------ start-up

    def start(self) -> None:
        """Start zygote, broker, services and the root agent."""
        secure_dir(self.run_dir)
        reg = self.registry
        reg.set_meta("state", "starting")
        adopted = self._recover() if self.resume else []
        reg.set_meta("name", self.cfg.name)
        reg.set_meta("config", self.cfg.source)
        reg.set_meta("goal", self.goal)
        reg.set_meta("supervisor_pid", os.getpid())
        reg.set_meta("state", "starting")
        self.spawner.start()
        if self.endpoint.startswith("tcp://"):
            auth.ensure_keys(self.run_dir)
        self.broker = Broker(self.endpoint, self.pub_endpoint, heartbeat_interval=self.heartbeat_interval,
                             liveness=self.liveness, interceptor=self._gate, log=self.log,
                             curve=auth.server_for(self.endpoint, self.run_dir))
        self.broker.bind()
        # a tcp port 0 ('*') is chosen at bind time: everybody connects to what was bound
        self.endpoint, self.pub_endpoint = self.broker.bound_endpoint, self.broker.bound_pub_endpoint
        reg.set_meta("endpoint", self.endpoint)
        reg.set_meta("pub_endpoint", self.pub_endpoint)
        self.broker.start_thread()
        self.client = BusClient(self.endpoint, "supervisor", log=self.log,
                                heartbeat_interval=self.heartbeat_interval, liveness=self.liveness,
                                curve=auth.client_for(self.endpoint, self.run_dir))
        self.client.connect()
        self._register_handlers()
        self._events_thread = threading.Thread(target=self._watch_events, name="events", daemon=True)
        self._events_thread.start()
        self.services = Services(self)
        self.services.start_all()
        (self.run_dir / "supervisor.pid").write_text(str(os.getpid()))
        reg.set_meta("state", "running")
        if self.registry.get(self.cfg.root) is None:
            self._spawn_root()
        else:
            self.log.info("swarm_resumed", adopted=adopted)

    def _recover(self) -> list[str]:
        """After a supervisor crash: kill old services, adopt live agents, mark the rest honestly."""
        from orchestrator.supervisor.recovery import recover

        adopted = recover(self.registry, self.log)
        for rec in self.registry.all():
            if rec.terminal:
                self.block(rec.id)
        for agent_id in adopted:
            rec = self.registry.get(agent_id)
            if rec is not None and rec.pid:
                self.life.adopt(rec.id, rec.pid)
        return adopted

    def _register_handlers(self) -> None:
        c = self.client
        if c is None:
            raise SwarmError("the supervisor's bus client is not connected")
        for body, fn in (
            (m.StartAgent, self._on_start_agent), (m.AgentReady, self._on_ready),
            (m.AgentStatus, self._on_status), (m.StepReport, self._on_step), (m.AgentDone, self._on_done),
            (m.ListAgents, self._on_list), (m.DeleteAgent, self._on_delete),
            (m.KillAll, self._on_kill_all), (m.Freeze, self._on_freeze),
            (m.OperatorMessage, self._on_operator_message), (m.Inspect, self._on_inspect),
            (m.Down, self._on_down), (m.SwarmStatus, self._on_swarm_status), (m.Usage, self._on_usage),
            (m.BreakerTripped, self._on_breaker),
        ):
            c.handle(body, fn)

    def _spawn_root(self) -> None:
        root = self.cfg.root
        rec = AgentRecord(id=root, name=root, role=root, parent=None, depth=0, task=self.goal)
        self.registry.add(rec)
        self.life.spawn(rec)
        self._pending_ready[root] = (None, time.monotonic() + 30)

    # ------------------------------------------------------------ the loop

    def request_shutdown(self, reason: str) -> None:
        """Signal-safe: record the intent to shut down; the loop acts on it."""
        if self._shutdown is None:
            self._shutdown = reason

    def install_signal_handlers(self) -> None:
        def on_term(signum: int, frame: object) -> None:
            self.request_shutdown("sigterm")

        def on_int(signum: int, frame: object) -> None:
            self._sigints += 1
            self.request_shutdown("sigint")
            if self._sigints > 1:
                self.life.hard = True  # a second Ctrl-C escalates to kill

        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGINT, on_int)

    def run(self) -> None:
        """Loop until a shutdown is requested, then tear everything down in order."""
        if self.client is None:
            raise SwarmError("start() the supervisor before run()")
        try:
            while self._shutdown is None:
                self.client.poll(TICK, until=lambda: self._shutdown is not None)
                self.tick()
        finally:
            self.teardown()

    def tick(self) -> None:
        """Reconcile: kills, limits, stop file, services, spawn timeouts."""
        now = time.monotonic()
        self.life.escalate(now)
        if now >= self._next_wall_check:
            self.life.poll_adopted()
        if (self.run_dir / STOP_FILE).exists():
            self._emergency_stop()
        for agent_id in self.flood.offenders():
            rec = self.registry.get(agent_id)
            if rec is not None and not rec.terminal:
                self.log.warning("agent_flooding", agent=agent_id)
                self.life.stop_subtree(agent_id, "flood", hard=True)
        if now >= self._next_wall_check:  # a scan of every agent: once a second is plenty
            self._next_wall_check = now + 1.0
            for rec in self.registry.all():
                if rec.terminal or rec.started_at is None:
                    continue
                if time.time() - rec.started_at > self.cfg.limits.max_wall_seconds:
                    self.life.stop_subtree(rec.id, "max_wall_seconds")
        for agent_id, (msg, deadline) in list(self._pending_ready.items()):
            if now > deadline:
                del self._pending_ready[agent_id]
                self.life.stop_subtree(agent_id, "start_timeout", hard=True)
                if msg is not None and self.client is not None:
                    self.client.reply_error(msg, SwarmError(f"agent {agent_id} did not start in time"))
        if self.services is not None:
            self.services.check()

    def _emergency_stop(self) -> None:
        live = [r for r in self.registry.all() if not r.terminal]
        if live:
            self.log.warning("stop_file_seen", agents=len(live))
            for rec in live:
                if rec.parent is None or self.registry.get(rec.parent) is None:
                    self.life.stop_subtree(rec.id, "stop_file", hard=True)
            for rec in self.registry.all():
                if not rec.terminal:
                    self.life.stop_subtree(rec.id, "stop_file", hard=True)

    def teardown(self) -> None:
        """Ordered and bounded: agents, services, zygote, broker; then the pid file."""
        self.log.info("supervisor_stopping", reason=self._shutdown)
        try:
            self.life.stop_all(self._shutdown or "down")
            if self.services is not None:
                self.services.stop_all()
        finally:
            self._events_stop.set()
            self.spawner.stop()
            if self.client is not None:
                self.client.close()
            if self.broker is not None:
                self.broker.stop()
            self.registry.set_meta("state", "down")
            self.registry.set_meta("down_reason", self._shutdown or "down")
            try:
                (self.run_dir / "supervisor.pid").unlink()
            except FileNotFoundError:
                pass
            self.log.info("supervisor_stopped")

    # ------------------------------------------------------------ plumbing

    def _gate(self, header: Header) -> str | None:
        """Broker interceptor (broker thread): stopped agents and floods are refused."""
        src = header.src
        if src in self._blocked and header.kind in (Kind.REQUEST, Kind.EVENT):
            return f"agent {src} was stopped"
        if src in peers.SERVICES or src.startswith(peers.OPERATOR_PREFIX):
            return None
        return self.flood.check(src, time.monotonic())

    def block(self, agent_id: str) -> None:
        self._blocked = self._blocked | {agent_id}

    def unblock(self, agent_id: str) -> None:
        self._blocked = self._blocked - {agent_id}

    def on_crash(self, rec: AgentRecord, code: int) -> None:
        """Restart a crashed agent if its role's policy says so (Erlang-style intensity)."""
        pol = self.cfg.agents[rec.role].restart
        if pol.policy != "on-crash" or self._shutdown is not None:
            return
        now = time.monotonic()
        recent = [t for t in self._restarts.get(rec.id, []) if now - t < pol.period_seconds]
        if len(recent) >= pol.max_restarts:
            self.registry.log_event(rec.id, "restart_limit", f"{len(recent)} in {pol.period_seconds:g}s")
            if rec.parent:
                self.tell(rec.parent, "supervisor",
                          f"agent {rec.id} crashed {len(recent) + 1} times; it stays crashed")
            return
        recent.append(now)
        self._restarts[rec.id] = recent
        self.unblock(rec.id)
        self.registry.update(rec.id, status="starting", restarts=rec.restarts + 1, ended_at=None,
                             pid=None)
        self.log.info("agent_restarting", agent=rec.id, restart=rec.restarts + 1)
        self._pending_ready[rec.id] = (None, time.monotonic() + 30)
        self.life.spawn(rec)

    def _on_exit_threadsafe(self, pid: int, code: int) -> None:
        if self.client is not None:
            self.client.call_soon_threadsafe(lambda: self.life.on_exit(pid, code))

    def _watch_events(self) -> None:
        sub = EventSubscriber(self.pub_endpoint, topics=[bm.PeerEvent.TYPE],
                              curve=auth.client_for(self.pub_endpoint, self.run_dir))
        try:
            while not self._events_stop.is_set():
                msg = sub.recv(0.5)
                if msg is not None and isinstance(msg.body, bm.PeerEvent) and self.client is not None:
                    body = msg.body
                    self.client.call_soon_threadsafe(lambda b=body: self._on_peer_event(b))
        finally:
            sub.close()

    def _on_peer_event(self, ev: bm.PeerEvent) -> None:
        if ev.event != "left" or ev.reason != "dead":
            return
        rec = self.registry.get(ev.peer)
        if rec is not None and not rec.terminal:
            self.log.warning("agent_hung", agent=rec.id)
            self.life.stop_subtree(rec.id, "hung", hard=True, status="crashed")

    def publish(self, agent_id: str, event: str, status: str, reason: str = "") -> None:
        self.registry.log_event(agent_id, event, reason)
        if self.client is not None:
            try:
                self.client.send("*", m.Lifecycle(agent_id, event, status, reason))
            except SwarmError:
                pass

    def tell(self, agent_id: str | None, sender: str, text: str, kind: str = "notice") -> None:
        """Deliver a message to a live agent's inbox (best effort)."""
        if not agent_id or self.client is None:
            return
        rec = self.registry.get(agent_id)
        if rec is None or rec.terminal:
            return
        try:
            self.client.send(agent_id, m.InboxMessage(sender, text, kind))
        except SwarmError:
            pass

    def _requester(self, msg: Message) -> AgentRecord:
        rec = self.registry.get(msg.header.src)
        if rec is None:
            raise PolicyDenied(f"{msg.header.src} is not an agent of this swarm")
        if rec.terminal:
            raise PolicyDenied(f"agent {rec.id} is {rec.status}")
        return rec

    def _is_operator(self, msg: Message) -> bool:
        """A CLI peer: never an agent (agent names may not take the operator prefix)."""
        src = msg.header.src
        return src.startswith(peers.OPERATOR_PREFIX) and self.registry.get(src) is None

    # ------------------------------------------------------------ handlers

    def _on_start_agent(self, msg: Message) -> object:
        req: m.StartAgent = msg.body
        parent = self._requester(msg)
        role = self.cfg.agents[parent.role]
        recs = self.registry.all()
        parents = {r.id: r.parent for r in recs}
        state = policy.SpawnState(
            lineage=policy.lineage_of(parent.id, parents),
            requester_role=parent.role,
            can_start=role.can_start,
            roles=tuple(self.cfg.agents),
            live_agents=sum(1 for r in recs if not r.terminal),
            live_children=sum(1 for r in recs if r.parent == parent.id and not r.terminal),
            used_ids=frozenset(r.id for r in recs) | peers.RESERVED_IDS,
            limits=self.cfg.limits,
        )
        decision = policy.check_spawn(state, req.name, req.role)
        if isinstance(decision, policy.Deny):
            self.registry.log_event(parent.id, "spawn_denied", decision.reason)
            self.log.info("spawn_denied", agent=parent.id, name=req.name, reason=decision.reason)
            raise PolicyDenied(decision.reason)
        task = req.task if not req.prompt else req.task
        rec = AgentRecord(id=decision.agent_id, name=req.name, role=decision.role, parent=parent.id,
                          depth=decision.depth, task=task)
        self.registry.add(rec)
        self.log.info("spawn_requested", agent=rec.id, parent=parent.id, t=time.monotonic())
        self._pending_ready[rec.id] = (msg, time.monotonic() + 15)
        self.life.spawn(rec, prompt=req.prompt)
        return DEFERRED

    def _on_ready(self, msg: Message) -> None:
        body: m.AgentReady = msg.body
        rec = self.registry.get(body.agent_id)
        if rec is None or msg.header.src != body.agent_id:
            return
        if rec.status == "starting":
            self.registry.update(rec.id, status="running", started_at=time.time())
            self.log.info("agent_registered", agent=rec.id, pid=body.pid, t=time.monotonic())
        self.publish(rec.id, "ready", "running")
        pending = self._pending_ready.pop(rec.id, None)
        if pending is not None and pending[0] is not None and self.client is not None:
            self.client.reply(pending[0], m.AgentStarted(rec.id, rec.depth, rec.pid or 0))

    def _on_status(self, msg: Message) -> None:
        body: m.AgentStatus = msg.body
        rec = self.registry.get(msg.header.src)
        if rec is None or rec.terminal:
            return
        fields: dict[str, Any] = {"steps": max(rec.steps, body.steps)}
        if rec.status not in ("frozen", "throttled") and body.status in ("running", "waiting"):
            fields["status"] = body.status
        self.registry.update(rec.id, **fields)
        if fields["steps"] > self.cfg.limits.max_steps:
            self.life.stop_subtree(rec.id, "max_steps")

    def _on_step(self, msg: Message) -> None:
        body: m.StepReport = msg.body
        rec = self.registry.get(msg.header.src)
        if rec is None or rec.terminal or body.agent_id != rec.id:
            return
        if body.step > rec.steps:
            self.registry.update(rec.id, steps=body.step)
        if body.step > self.cfg.limits.max_steps:
            self.life.stop_subtree(rec.id, "max_steps")
            return
        self._check_step(rec, body)

    def _gateway_report(self, msg: Message, live_only: bool = True) -> AgentRecord | None:
        """The agent a gateway report is about; None for reports from elsewhere (or too late)."""
        if msg.header.src != "gateway":
            return None
        rec = self.registry.get(msg.body.agent_id)
        return None if rec is None or (live_only and rec.terminal) else rec

    def _on_breaker(self, msg: Message) -> None:
        """The gateway's breaker froze an agent (its calls are held there already): record it."""
        body: m.BreakerTripped = msg.body
        rec = self._gateway_report(msg)
        if rec is None:
            return
        words = ", ".join(body.words)
        self.log.warning("breaker_tripped", agent=rec.id, words=words, streak=body.streak)
        self.registry.log_event(rec.id, "breaker_tripped", f"risky words in {body.streak} outputs: {words}")
        self.life.mark_frozen(rec.id, f"breaker: {words}")

    def _check_step(self, rec: AgentRecord, step: m.StepReport) -> None:
        """Loop detection on one reported step."""
        if step.command == "do_nothing":
            return  # waiting for the inbox is not a loop; max_steps and wall time bound it
        det = self._loops.setdefault(rec.id, LoopDetector(self.cfg.limits.loop_threshold,
                                                          self.cfg.limits.loop_window))
        verdict = det.observe(step.command, step.args_json)
        if verdict is Verdict.WARN:
            self.registry.log_event(rec.id, "loop_warning", step.command)
            self.tell(rec.id, "supervisor",
                      f"You issued {step.command} with the same arguments "
                      f"{self.cfg.limits.loop_threshold} times in a row. Change your approach: "
                      "repeating it again stops you.")
        elif verdict is Verdict.STOP:
            self.life.stop_subtree(rec.id, "loop")

    def _on_done(self, msg: Message) -> None:
        body: m.AgentDone = msg.body
        rec = self.registry.get(msg.header.src)
        if rec is None or rec.terminal:
            return
        status = "done" if body.ok else "failed"
        self.registry.update(rec.id, status=status, result=body.result, ended_at=time.time(),
                             reason=None if body.ok else body.result[:200])
        self.publish(rec.id, status, status, "" if body.ok else body.result[:200])
        self.log.info("agent_recorded_done", agent=rec.id, status=status)
        if rec.parent:
            word = "finished" if body.ok else "failed"
            self.tell(rec.parent, rec.id, f"{rec.id} {word}: {body.result}",
                      "result" if body.ok else "notice")
        # a finished agent's own sub-agents have nobody to report to any more
        for child in self.registry.children(rec.id):
            if not child.terminal:
                self.life.stop_subtree(child.id, f"parent_{status}")
        if rec.parent is None:
            self.registry.set_meta("result", body.result)
            self.registry.set_meta("root_status", status)

    def _on_list(self, msg: Message) -> m.AgentList:
        scope = msg.body.scope
        recs = self.registry.all()
        if scope != "all" and not self._is_operator(msg):
            recs = [r for r in recs if r.parent == msg.header.src]
        return m.AgentList([ps_view(r) for r in recs])

    def _on_delete(self, msg: Message) -> bm.Ok:
        body: m.DeleteAgent = msg.body
        target = self.registry.get(body.agent_id)
        if target is None:
            raise NotFound(f"no agent {body.agent_id!r}")
        if not self._is_operator(msg):
            requester = self._requester(msg)
            subtree = {r.id for r in self.registry.subtree(requester.id)} - {requester.id}
            if target.id not in subtree:
                raise PolicyDenied(f"{target.id} is not one of your sub-agents")
        killed = self.life.stop_subtree(target.id, body.reason or "deleted", hard=body.hard)
        return bm.Ok({"stopped": killed})

    def _on_kill_all(self, msg: Message) -> bm.Ok:
        if not self._is_operator(msg):
            raise PolicyDenied("only an operator may kill every agent")
        n = self.life.stop_everything(msg.body.reason or "kill_all", hard=True)
        return bm.Ok({"stopped": n})

    def _on_freeze(self, msg: Message) -> bm.Ok:
        body: m.Freeze = msg.body
        if not self._is_operator(msg):
            raise PolicyDenied("only an operator may freeze or thaw agents")
        n = self.life.freeze(body.agent_id, body.frozen, body.reason)
        return bm.Ok({"agents": n})

    def _on_operator_message(self, msg: Message) -> bm.Ok:
        body: m.OperatorMessage = msg.body
        rec = self.registry.get(body.agent_id)
        if rec is None:
            raise NotFound(f"no agent {body.agent_id!r}")
        if rec.terminal:
            raise PolicyDenied(f"agent {rec.id} is {rec.status}")
        self.tell(rec.id, "operator", body.text, "message")
        return bm.Ok()

    def _on_inspect(self, msg: Message) -> m.InspectReply:
        rec = self.registry.get(msg.body.agent_id)
        if rec is None:
            raise NotFound(f"no agent {msg.body.agent_id!r}")
        info = rec.public()
        info["children"] = [c.id for c in self.registry.children(rec.id)]
        info["events"] = self.registry.events(rec.id)[-20:]
        return m.InspectReply(info)

    def _on_down(self, msg: Message) -> bm.Ok:
        self.request_shutdown(msg.body.reason or "down")
        return bm.Ok()

    def _on_swarm_status(self, msg: Message) -> m.SwarmState:
        root = self.registry.get(self.cfg.root)
        return m.SwarmState({
            "name": self.cfg.name, "root": self.cfg.root, "root_status": root.status if root else None,
            "result": root.result if root else None, "pid": os.getpid(),
            "agents": len(self.registry.all()), "uptime": round(time.time() - self.started, 3),
        })

    def _on_usage(self, msg: Message) -> None:
        body: m.Usage = msg.body
        # usage of a call that finished just before the agent did still counts
        rec = self._gateway_report(msg, live_only=False)
        if rec is None:
            return
        fields: dict[str, Any] = {"tokens": max(rec.tokens, body.tokens),
                                  "requests": max(rec.requests, body.requests),
                                  "cost_usd": max(rec.cost_usd, body.cost_usd)}
        if rec.terminal:
            self.registry.update(rec.id, **fields)
            return
        if body.status == "throttled" and rec.status != "frozen":
            fields["status"] = "throttled"
            self.registry.log_event(rec.id, "throttled", "")
        elif body.status in ("running", "waiting") and rec.status == "throttled":
            fields["status"] = body.status
        self.registry.update(rec.id, **fields)
        if body.stop_reason:
            self.life.stop_subtree(rec.id, body.stop_reason)

