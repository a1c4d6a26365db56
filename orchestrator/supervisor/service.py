"""The supervisor process: broker host, agent-table owner, the only spawner and reaper.

It wires its parts (the agent table, the reaper's ladder, the guards, the
lifecycle, the bus handlers; see ``parts.py``) around a backend that runs
the agent processes (``backends/``: local or ray), and runs the loop: poll
the bus, then reconcile on a tick. Events (an exit, a lost process, a dead
peer) only bring work to the loop. Signal handlers record intent; the loop
acts (§8).

It also issues every bus credential of its swarm (``bus.keyring``, kept in
``RUN_DIR/credentials.json``, verifiers only): its own, the operator's
(``RUN_DIR/operator.cred``, mode 0600: the CLI's), one per service launch
(on the service's stdin) and one per agent incarnation (in its spec, made
by the backend: here, or on the agent's Ray node with only the public key
coming back); an agent's is revoked when its process is reaped.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from bus import messages as bm
from bus.broker import Broker
from bus.client import BusClient
from bus.credentials import OPERATOR_FILE, Credential, write_file
from bus.events import EventSubscriber
from bus.keyring import Keyring, default_mechanism, stored_peers
from bus.sockets import ipc_endpoint, secure_dir
from orchestrator.config import SwarmConfig
from orchestrator.supervisor import budgets
from orchestrator.supervisor.backends import make_backend
from orchestrator.supervisor.backends.base import Exited, Lost
from orchestrator.supervisor.board import STOPPED, ServiceBoard
from orchestrator.supervisor.gate import Gate
from orchestrator.supervisor.guards import build_guards
from orchestrator.supervisor.guards.flood import Flood
from orchestrator.supervisor.handlers import routes
from orchestrator.supervisor.keeper import ZYGOTE, ZygoteKeeper
from orchestrator.supervisor.parts import ROOT_START_TIMEOUT, Parts, assemble
from orchestrator.supervisor.reaper import GroupSignaller, Reaper, Timings
from orchestrator.supervisor.reconcile import Reconciler
from orchestrator.supervisor.recovery import recover
from orchestrator.supervisor.registry import AgentRecord
from orchestrator.supervisor.services import Services, service_argvs
from orchestrator.supervisor.storage import StorageWatch
from orchestrator.supervisor.table import AgentTable
from orchestrator.supervisor.tracing import SupervisorTracing
from swarm_core import authz
from swarm_core.defaults import HEARTBEAT_INTERVAL, KILL_RECHECK, LIVENESS, STOP_GRACE
from swarm_core.errors import SwarmError
from swarm_core.peers import OPERATOR, SUPERVISOR, PeerKind
from swarm_core.status import Reason

TICK = 0.1
CREDENTIALS = "credentials.json"


def _endpoints(cfg: SwarmConfig, run_dir: Path) -> tuple[str, str]:
    """The bus and event endpoints to bind (a tcp port 0 is chosen at bind time)."""
    if cfg.bus.transport == "tcp":
        host = cfg.bus.host
        return f"tcp://{host}:{cfg.bus.port or '*'}", f"tcp://{host}:{cfg.bus.pub_port or '*'}"
    return ipc_endpoint(run_dir, "bus"), ipc_endpoint(run_dir, "events")


class Supervisor:
    """One swarm's supervisor."""

    def __init__(self, cfg: SwarmConfig, run_dir: Path, log: Any, *, goal: str | None = None,
                 heartbeat_interval: float = HEARTBEAT_INTERVAL, liveness: int = LIVENESS,
                 grace: float = STOP_GRACE, resume: bool = False) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.log = log
        self.goal = goal or cfg.goal
        self.heartbeat_interval = heartbeat_interval
        self.liveness = liveness
        self.grace = grace
        self.resume = resume
        self.endpoint, self.pub_endpoint = _endpoints(cfg, self.run_dir)
        self.table = AgentTable(self.run_dir / "registry.db")
        self.storage = StorageWatch(self.table, log)
        # every credential of the swarm (made now: a backend issues its agents' through it)
        self.keys = self._keyring()
        self.backend = make_backend(cfg, self.run_dir, self._report_threadsafe, log, keys=self.keys)
        self.reaper = Reaper(time.monotonic, self.backend.signaller,
                             Timings(grace, self.backend.term_grace(grace), KILL_RECHECK))
        # the services (and a dead supervisor's) are process groups of this machine, whatever the backend
        self.service_reaper = Reaper(time.monotonic, GroupSignaller(), Timings(grace, grace, KILL_RECHECK))
        self.tracing = SupervisorTracing.for_run(self.run_dir, cfg.name, log)  # the run's one exporter
        self.broker: Broker | None = None
        self.client: BusClient | None = None
        self.parts: Parts | None = None
        self.reconciler: Reconciler | None = None
        self.services: Services | None = None
        self.keeper: ZygoteKeeper | None = None
        self._credential: Credential | None = None
        self._shutdown: str | None = None
        self._events_thread: threading.Thread | None = None
        self._events_stop = threading.Event()

    # ------------------------------------------------------------ start-up

    def start(self) -> None:
        """Start the backend (zygote or Ray hosts), broker, handlers, services and the root agent."""
        secure_dir(self.run_dir)
        table = self.table
        table.set_meta("state", "starting")
        for key, value in (("name", self.cfg.name), ("config", self.cfg.source), ("goal", self.goal),
                           ("supervisor_pid", os.getpid()), ("supervisor_started", time.time())):
            table.set_meta(key, value)
        table.set_meta("backend", {"kind": self.backend.kind})
        self.backend.start()
        table.set_meta("backend", self.backend.facts())
        zygote = getattr(self.backend, "spawner", None)  # the local backend's one zygote (Ray restarts its hosts)
        if zygote is not None:
            self.keeper = ZygoteKeeper(zygote, table, ServiceBoard(table), self.log)
            self.keeper.started()
        adopted = recover(table, self.service_reaper, self.log, self.backend.adopt) if self.resume else []
        guards = build_guards(self.cfg, self.run_dir, self.log, time.monotonic)
        flood = guards.find(Flood)
        keys = self.keys
        keys.retain(set(adopted))  # a resume: the agents not adopted are gone, so are their credentials
        gate = Gate(table, flood.check if isinstance(flood, Flood) else _no_flood_check)
        client = self._start_bus(gate, keys)
        parts = self.parts = assemble(
            self.cfg, self.run_dir, table, client, self.backend, self.reaper, self.log,
            endpoint=self.endpoint, heartbeat_interval=self.heartbeat_interval, liveness=self.liveness,
            shutdown=self.request_shutdown, shutting_down=lambda: self._shutdown is not None, guards=guards,
            keys=keys, tracing=self.tracing)
        self.reconciler = Reconciler(parts, gone=self.backend.gone)
        self._adopt(parts, adopted)
        client.authorize_with(authz.for_dispatch(table.is_below))
        for body, handler in routes(parts).items():
            client.handle(body, self.storage.guard(body, handler))
        self._events_thread = threading.Thread(target=self._watch_events, name="events", daemon=True)
        self._events_thread.start()
        self.services = Services(service_argvs(self.cfg, self.run_dir, self.endpoint), self.run_dir, client,
                                 table, self.service_reaper, self.log, keys=keys)
        self.services.start_all()
        if adopted:  # the previous services were killed: the adopted agents' calls to them are lost
            self.services.announce_on_join(adopted)
        (self.run_dir / "supervisor.pid").write_text(str(os.getpid()))
        table.set_meta("state", "running")
        if table.get(self.cfg.root) is None:
            self._spawn_root(parts)
        else:
            self.log.info("swarm_resumed", adopted=adopted)

    def _keyring(self) -> Keyring:
        """A fresh keyring, or on resume the stored one (``start`` keeps only the adopted agents')."""
        store = self.run_dir / CREDENTIALS
        if self.resume and store.exists():
            return Keyring.load(store, keep=stored_peers(store))
        return Keyring(default_mechanism(self.endpoint), store=store)

    def _start_bus(self, gate: Gate, keys: Keyring) -> BusClient:
        """Bind the broker (every message passes ``gate``), start its thread and connect to it.

        Then issue the operator's credential (the file the CLI reads): from
        now on an operator may connect.
        """
        self.broker = Broker(self.endpoint, self.pub_endpoint, heartbeat_interval=self.heartbeat_interval,
                             liveness=self.liveness, interceptor=gate, log=self.log, keyring=keys)
        self.broker.bind()
        # a tcp port 0 ('*') is chosen at bind time: everybody connects to what was bound
        self.endpoint, self.pub_endpoint = self.broker.bound_endpoint, self.broker.bound_pub_endpoint
        self.table.set_meta("endpoint", self.endpoint)
        self.table.set_meta("pub_endpoint", self.pub_endpoint)
        self.broker.start_thread()
        self._credential = keys.issue(SUPERVISOR, PeerKind.SUPERVISOR, one_process=True)
        keys.bind_pid(SUPERVISOR, os.getpid())
        write_file(self.run_dir / OPERATOR_FILE, keys.issue(OPERATOR, PeerKind.OPERATOR))
        self.client = BusClient(self.endpoint, SUPERVISOR, log=self.log, credential=self._credential,
                                heartbeat_interval=self.heartbeat_interval, liveness=self.liveness)
        return self.client.connect()

    def _adopt(self, parts: Parts, adopted: list[str]) -> None:
        """After a resume: take over the agents still alive."""
        for agent_id in adopted:
            rec = self.table.get(agent_id)
            if rec is not None and rec.pid:
                parts.life.adopt(rec.id, rec.pid)

    def _spawn_root(self, parts: Parts) -> None:
        root = self.cfg.root
        tokens, usd = budgets.child_budget(self.cfg.agents[root].budget, 0)
        rec = self.table.add(AgentRecord(id=root, name=root, role=root, parent=None, depth=0, task=self.goal,
                                         budget_tokens=tokens, budget_usd=usd))
        parts.life.spawn(rec)
        self.table.expect_ready(root, None, time.monotonic() + ROOT_START_TIMEOUT)

    # ------------------------------------------------------------ the loop

    def request_shutdown(self, reason: str) -> None:
        """Signal-safe: record the intent to shut down; the loop acts on it."""
        if self._shutdown is None:
            self._shutdown = reason

    def escalate(self) -> None:
        """Signal-safe: every stop from now on is a kill (a second Ctrl-C)."""
        self.reaper.hard = self.service_reaper.hard = True

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
        """Reconcile the zygote, the agents (guards, ladder, start timeouts) and the services; probe a
        refusing disk."""
        self.storage.probe()
        if self.keeper is not None:
            self.keeper.check()
        if self.reconciler is not None:
            self.storage.run(self.reconciler.tick)
        self.service_reaper.step()
        if self.services is not None:
            self.storage.run(self.services.check)

    def _idle(self, seconds: float) -> None:
        if self.client is not None:
            self.client.poll(seconds)
        else:
            time.sleep(seconds)

    def teardown(self) -> None:
        """Ordered and bounded: agents, services, the backend (zygote or hosts), broker; then the pid file."""
        reason = self._shutdown or Reason.DOWN
        self.log.info("supervisor_stopping", reason=reason)
        try:
            if self.parts is not None:
                until = time.monotonic() + 2 * self.grace + 3.0
                self.storage.run(lambda: self.parts.life.stop_all(reason, until, self._idle))  # type: ignore
                if self.storage.problem:  # the registry refused to record the stops: end them anyway
                    self.reaper.drain(self.table.known_pids(), time.monotonic(), self._idle)
            if self.services is not None:
                self.services.stop_all(self._idle)
        finally:
            self._events_stop.set()
            try:
                self.backend.stop()
            except Exception:  # the rest of the teardown must still run
                self.log.exception("backend_stop_failed")
            if self.keeper is not None:
                ServiceBoard(self.table).set(ZYGOTE, STOPPED, pid=self.keeper.spawner.pid)
            if self.client is not None:
                self.client.close()
            if self.broker is not None:
                self.broker.stop()
            self.tracing.close()
            self.storage.run(lambda: (self.table.set_meta("state", "down"),
                                      self.table.set_meta("down_reason", reason)))
            for name in ("supervisor.pid", OPERATOR_FILE):  # nobody answers a CLI any more
                try:
                    (self.run_dir / name).unlink()
                except FileNotFoundError:
                    pass
            self.log.info("supervisor_stopped")

    # ------------------------------------------------------------ threads → loop

    def _report_threadsafe(self, event: Exited | Lost) -> None:
        """A backend thread (the zygote's reader, a Ray host's watcher): hand the event to the loop."""
        if self.client is not None:
            self.client.call_soon_threadsafe(
                lambda: self._on_loop("agent_exit_failed", self._on_report, event))

    def _on_report(self, event: Exited | Lost) -> None:
        if self.reconciler is not None:
            _REPORTS[type(event)](self.reconciler, event)

    def _on_loop(self, event: str, fn: Any, *args: Any) -> None:
        """Run a handed-over call on the loop; a failure is logged, never the end of the supervisor."""
        try:
            self.storage.run(lambda: fn(*args))
        except Exception:  # a boundary: the loop must go on
            self.log.exception(event)

    def _peer_event(self, ev: bm.PeerEvent) -> None:
        """On the loop: the reconciler (a dead agent is hung) and the services (an adopted agent joined)."""
        if self.reconciler is not None:
            self.reconciler.on_peer_event(ev)
        if self.services is not None:
            self.services.on_peer_event(ev)

    def _watch_events(self) -> None:
        sub = EventSubscriber(self.pub_endpoint, topics=[bm.PeerEvent.TYPE], credential=self._credential)
        try:
            while not self._events_stop.is_set():
                msg = sub.recv(0.5)
                client = self.client
                if msg is not None and isinstance(msg.body, bm.PeerEvent) and client and self.reconciler:
                    client.call_soon_threadsafe(lambda b=msg.body: self._on_loop(
                        "peer_event_failed", self._peer_event, b))
        finally:
            sub.close()


_REPORTS: dict[type, Any] = {
    Exited: lambda r, e: r.on_exit(e.pid, e.code),
    Lost: lambda r, e: r.on_lost(e.pid, e.reason),
}


def _no_flood_check(peer: str, now: float) -> str | None:
    """The gate's flood check when no flood guard is configured: nothing is refused."""
    return None
