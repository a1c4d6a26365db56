"""The service processes the supervisor owns: the LLM gateway and the memory service.

Each runs in its own process group, connects to the bus under a fixed peer
id with a credential issued for that launch (handed over on its stdin, so
it is never on disk, and bound to the process), and is restarted if it
dies, within its restart intensity. Stopping is the reaper's ladder: a Stop
message, then SIGTERM to the group, then SIGKILL. Their state (up;
restarting until the new process answers a Ping; given up, with how it
ended; stopped) is kept on the service board for ``swarm ps``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import zmq

from agents.confine.environment import memory_environment
from bus import messages as bm
from bus.keyring import Keyring
from bus.protocol import Kind, Message
from orchestrator.config import SwarmConfig, effective_llm
from orchestrator.supervisor.board import GIVEN_UP, RESTARTING, STOPPED, UP, ServiceBoard
from orchestrator.supervisor.intensity import RestartIntensity
from orchestrator.supervisor.lifecycle import describe_exit
from orchestrator.supervisor.messenger import Messenger
from orchestrator.supervisor.reaper import Reaper, Timings
from orchestrator.supervisor.spawner import child_env
from orchestrator.supervisor.table import AgentTable
from swarm_core import messages as m
from swarm_core.defaults import KILL_RECHECK, SERVICE_STOP_GRACE
from swarm_core.errors import BusError, DeadlineExceeded, SwarmError, UnknownDestination
from swarm_core.peers import GATEWAY, MEMORY, PeerKind
from swarm_core.status import Reason

MAX_RESTARTS, RESTART_PERIOD = 5, 60.0  # more restarts than that within a minute: the service is given up
PROBE_TIMEOUT = 1.0  # seconds a restarting service has to answer one Ping (it is asked again after)
# error codes that mean the Ping never reached the service
_NOT_THERE = frozenset({UnknownDestination.code, DeadlineExceeded.code, BusError.code})
TIMINGS = Timings(stop=SERVICE_STOP_GRACE, term=SERVICE_STOP_GRACE, recheck=KILL_RECHECK)


class ServiceError(SwarmError):
    """A service process did not come up."""

    code = "service_failed"


@dataclass
class _Service:
    name: str
    argv: list[str]
    ready_timeout: float
    key_env: str | None = None  # memory: the embedder's key variable (the only one it gets)
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    probing: bool = False  # a Ping to the restarted process is in flight
    intensity: RestartIntensity = field(default_factory=lambda: RestartIntensity(MAX_RESTARTS, RESTART_PERIOD))


def service_argvs(cfg: SwarmConfig, run_dir: Path, endpoint: str) -> list[_Service]:
    """The services a swarm runs, with their command lines and start-up allowance."""
    py, run = sys.executable, str(run_dir)
    out = [_Service(GATEWAY, [py, "-m", "orchestrator.gateway", "--run-dir", run, "--config", cfg.source,
                              "--endpoint", endpoint, "--credential", "-"], 600.0)]
    if cfg.memory:
        argv = [py, "-m", "memory.service", "--run-dir", run, "--endpoint", endpoint, "--credential", "-"]
        llm = effective_llm(cfg)
        key_env = None
        if llm.embeddings == "openai":
            argv += ["--embedder", "openai", "--embedding-model", llm.embedding_model,
                     "--api-key-env", llm.api_key_env]
            key_env = llm.api_key_env
            if llm.base_url:
                argv += ["--base-url", llm.base_url]
        out.append(_Service(MEMORY, argv, 120.0, key_env))
    return out


class Services:
    """Start, watch, restart and stop the supervisor's service processes."""

    def __init__(self, services: list[_Service], run_dir: Path, client: Any, table: AgentTable,
                 reaper: Reaper, log: Any, clock: Callable[[], float] = time.monotonic, *,
                 keys: Keyring) -> None:
        self._services = services
        self.keys = keys
        self.run_dir = Path(run_dir)
        self.client = client
        self.bus = Messenger(client, table)
        self.table = table
        self.reaper = reaper
        self.log = log
        self.clock = clock
        self.board = ServiceBoard(table)
        self._stopping = False
        self._untold: set[str] = set()  # adopted agents to tell about the new services when they join

    def _env(self, svc: _Service) -> dict[str, str]:
        if svc.name != GATEWAY:  # only the gateway keeps swarm up's environment (it holds the model key)
            root = str(Path(__file__).resolve().parents[2])
            return memory_environment(dict(os.environ), root, svc.key_env)
        return child_env()

    def _launch(self, svc: _Service) -> None:
        cred = self.keys.issue(svc.name, PeerKind(svc.name), one_process=True)
        out = open(self.run_dir / "logs" / f"{svc.name}.out", "ab")  # noqa: SIM115 - given to child
        try:
            svc.proc = subprocess.Popen(svc.argv, stdin=subprocess.PIPE, stdout=out, stderr=out,
                                        start_new_session=True, env=self._env(svc), close_fds=True)
        finally:
            out.close()
        self.keys.bind_pid(svc.name, svc.proc.pid)
        try:
            svc.proc.stdin.write(cred.to_json().encode() + b"\n")  # type: ignore[union-attr]
            svc.proc.stdin.close()  # type: ignore[union-attr]
        except OSError as exc:  # it died at once: check() sees the exit
            self.log.warning("service_credential_not_delivered", service=svc.name, error=str(exc))
        self.log.info("service_started", service=svc.name, pid=svc.proc.pid)
        pids = dict(self.table.meta("service_pids", {}) or {})
        pids[svc.name] = [svc.proc.pid, time.time()]
        self.table.set_meta("service_pids", pids)

    def start_all(self) -> None:
        """Start every service and wait until each answers on the bus."""
        (self.run_dir / "logs").mkdir(parents=True, exist_ok=True)
        for svc in self._services:
            self._launch(svc)
        for svc in self._services:
            self._wait_ready(svc)
            self.board.set(svc.name, UP, pid=svc.proc.pid if svc.proc else None)

    def _wait_ready(self, svc: _Service) -> None:
        deadline = time.monotonic() + svc.ready_timeout
        while time.monotonic() < deadline:
            if svc.proc is not None and svc.proc.poll() is not None:
                raise ServiceError(f"the {svc.name} service exited with code {svc.proc.returncode}; "
                                   f"see {self.run_dir / 'logs' / (svc.name + '.out')}")
            try:
                self.client.request(svc.name, bm.Ping(b""), 0.5)
                return
            except (UnknownDestination, DeadlineExceeded):
                self.client.poll(0.05)
            except SwarmError:
                return  # it answered (even "does not handle ping"): it is on the bus
        raise ServiceError(f"the {svc.name} service did not come up within {svc.ready_timeout:g}s")

    def check(self) -> None:
        """Restart a service that died, while its restart intensity allows, else give it up; probe the
        restarting ones."""
        if self._stopping:
            return
        for svc in self._services:
            if svc.proc is None or svc.proc.poll() is None:
                continue
            code = svc.proc.returncode
            self.reaper.forget(svc.proc.pid)
            reason = describe_exit(code)
            if not svc.intensity.allow(self.clock()):
                self.log.error("service_gave_up", service=svc.name, code=code)
                self.board.set(svc.name, GIVEN_UP, pid=svc.proc.pid, restarts=svc.restarts,
                               reason=f"{reason}; restarted {svc.intensity.recent} times within "
                                      f"{RESTART_PERIOD:g}s already")
                svc.proc = None
                continue
            svc.restarts += 1
            self.log.warning("service_crashed", service=svc.name, code=code, restart=svc.restarts)
            self.table.log_event(None, "service_crashed", f"{svc.name} exit {code}")
            self._launch(svc)
            self.board.set(svc.name, RESTARTING, pid=svc.proc.pid if svc.proc else None, reason=reason,
                           restarts=svc.restarts)
            self.announce([svc.name])
        for svc in self._services:
            if self.board.state(svc.name) == RESTARTING:
                self._probe(svc)

    def _probe(self, svc: _Service) -> None:
        """Ask a restarting service for a Ping (without waiting): its answer means it is up again."""
        proc = svc.proc
        if svc.probing or proc is None or proc.poll() is not None:
            return

        def answered(msg: Message) -> None:
            svc.probing = False
            if svc.proc is not proc or (msg.header.kind is Kind.ERROR and msg.body.code in _NOT_THERE):
                return  # not on the bus yet (or already replaced): the next check asks again
            self.board.set(svc.name, UP, pid=proc.pid, restarts=svc.restarts)

        try:
            self.client.send_request(svc.name, bm.Ping(b""), PROBE_TIMEOUT, answered)
            svc.probing = True
        except (SwarmError, zmq.ZMQError) as exc:
            self.log.warning("service_probe_failed", service=svc.name, error=str(exc))

    def announce(self, names: list[str] | None = None) -> None:
        """Tell every live agent that these services (default: all) are new processes: a request in
        flight to the old one (not yet recorded by it) will get no answer, so it is asked again."""
        for name in names if names is not None else [s.name for s in self._services]:
            for rec in self.table.live():
                self.bus.send(rec.id, m.ServiceRestarted(name))

    def announce_on_join(self, agents: list[str]) -> None:
        """After a resume: tell each of ``agents`` (the adopted ones) that every service is new, now and
        again when it joins the new broker. A name is routable only once its connection has spoken
        (``bus/admission.py``): an agent with a slow heartbeat that has not yet noticed the new broker
        would miss the announcement. A second one is harmless (a call asked again is counted once)."""
        self._untold.update(agents)
        self.announce()

    def on_peer_event(self, ev: bm.PeerEvent) -> None:
        """A peer joined the bus: an adopted agent not told yet is told now (see :meth:`announce_on_join`)."""
        if ev.event != "joined" or ev.peer not in self._untold:
            return
        self._untold.discard(ev.peer)
        rec = self.table.get(ev.peer)
        if rec is not None and not rec.terminal:
            for svc in self._services:
                self.bus.send(rec.id, m.ServiceRestarted(svc.name))

    def stop_all(self, idle: Callable[[float], object]) -> None:
        """The ladder for every live service, bounded; then reap them."""
        self._stopping = True
        procs = {s.name: s.proc for s in self._services if s.proc is not None and s.proc.poll() is None}
        for name, proc in procs.items():
            self.reaper.stop(proc.pid, ask=lambda name=name: self.bus.send(name, m.Stop(Reason.DOWN)),
                             timings=TIMINGS, alive=lambda proc=proc: self._alive(proc))
        until = self.clock() + TIMINGS.stop + TIMINGS.term + SERVICE_STOP_GRACE
        self.reaper.drain([p.pid for p in procs.values()], until, idle)
        for name, proc in procs.items():
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
            self.board.set(name, STOPPED, pid=proc.pid)

    def _alive(self, proc: subprocess.Popen[bytes]) -> bool:
        """The process (reaped when it exits), or a helper left in its group (a llama server...)."""
        return proc.poll() is None or self.reaper.signaller.alive(proc.pid)
