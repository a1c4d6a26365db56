"""The service processes the supervisor owns: the LLM gateway and the memory service.

Each runs in its own process group, connects to the bus under a fixed peer
id, and is restarted (a bounded number of times) if it dies. Stopping is
ordered: a Stop message, then SIGTERM to the group, then SIGKILL.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from agents.confine.environment import memory_environment
from bus import messages as bm
from orchestrator.config import effective_llm
from orchestrator.supervisor.spawner import SIGKILL, SIGTERM, group_alive, signal_group
from swarm_core import messages as m
from swarm_core.errors import DeadlineExceeded, SwarmError, UnknownDestination

if TYPE_CHECKING:
    from orchestrator.supervisor.service import Supervisor

MAX_RESTARTS = 3


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
    started: list[float] = field(default_factory=list)


class Services:
    """Start, watch, restart and stop the supervisor's service processes."""

    def __init__(self, sup: "Supervisor") -> None:
        self.sup = sup
        self._stopping = False
        py = sys.executable
        run = str(sup.run_dir)
        self._services: list[_Service] = [
            _Service("gateway", [py, "-m", "orchestrator.gateway", "--run-dir", run,
                                 "--config", sup.cfg.source, "--endpoint", sup.endpoint], 600.0),
        ]
        if sup.cfg.memory:
            argv = [py, "-m", "memory.service", "--run-dir", run, "--endpoint", sup.endpoint]
            llm = effective_llm(sup.cfg)
            key_env = None
            if llm.embeddings == "openai":
                argv += ["--embedder", "openai", "--embedding-model", llm.embedding_model,
                         "--api-key-env", llm.api_key_env]
                key_env = llm.api_key_env
                if llm.base_url:
                    argv += ["--base-url", llm.base_url]
            self._services.append(_Service("memory", argv, 120.0, key_env))

    def _env(self, svc: _Service) -> dict[str, str]:
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])
        if svc.name != "gateway":  # only the gateway keeps swarm up's environment (it holds the model key)
            return memory_environment(env, root, svc.key_env)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        return env

    def _launch(self, svc: _Service) -> None:
        out = open(self.sup.run_dir / "logs" / f"{svc.name}.out", "ab")  # noqa: SIM115 - given to child
        try:
            svc.proc = subprocess.Popen(svc.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                        start_new_session=True, env=self._env(svc), close_fds=True)
        finally:
            out.close()
        svc.started.append(time.monotonic())
        self.sup.log.info("service_started", service=svc.name, pid=svc.proc.pid)
        pids = dict(self.sup.registry.meta("service_pids", {}) or {})
        pids[svc.name] = [svc.proc.pid, time.time()]
        self.sup.registry.set_meta("service_pids", pids)

    def start_all(self) -> None:
        """Start every service and wait until each answers on the bus."""
        (self.sup.run_dir / "logs").mkdir(parents=True, exist_ok=True)
        for svc in self._services:
            self._launch(svc)
        for svc in self._services:
            self._wait_ready(svc)

    def _wait_ready(self, svc: _Service) -> None:
        client = self.sup.client
        if client is None:
            raise ServiceError("the supervisor has no bus client")
        deadline = time.monotonic() + svc.ready_timeout
        while time.monotonic() < deadline:
            if svc.proc is not None and svc.proc.poll() is not None:
                raise ServiceError(f"the {svc.name} service exited with code {svc.proc.returncode}; "
                                   f"see {self.sup.run_dir / 'logs' / (svc.name + '.out')}")
            try:
                client.request(svc.name, bm.Ping(b""), 0.5)
                return
            except (UnknownDestination, DeadlineExceeded):
                client.poll(0.05)
            except SwarmError:
                return  # it answered (even "does not handle ping"): it is on the bus
        raise ServiceError(f"the {svc.name} service did not come up within {svc.ready_timeout:g}s")

    def pid(self, name: str) -> int | None:
        for svc in self._services:
            if svc.name == name and svc.proc is not None:
                return svc.proc.pid
        return None

    def check(self) -> None:
        """Restart a service that died (at most MAX_RESTARTS times)."""
        if self._stopping:
            return
        for svc in self._services:
            if svc.proc is None or svc.proc.poll() is None:
                continue
            code = svc.proc.returncode
            if svc.restarts >= MAX_RESTARTS:
                if svc.proc is not None:
                    self.sup.log.error("service_gave_up", service=svc.name, code=code)
                    svc.proc = None
                continue
            svc.restarts += 1
            self.sup.log.warning("service_crashed", service=svc.name, code=code, restart=svc.restarts)
            self.sup.registry.log_event(None, "service_crashed", f"{svc.name} exit {code}")
            self._launch(svc)

    def stop_all(self, grace: float = 3.0) -> None:
        """Stop message, then SIGTERM, then SIGKILL; bounded."""
        self._stopping = True
        client = self.sup.client
        live = [s for s in self._services if s.proc is not None and s.proc.poll() is None]
        for svc in live:
            if client is not None:
                try:
                    client.send(svc.name, m.Stop("down"))
                except SwarmError:
                    pass
        for stage, sig in (("stop", None), ("term", SIGTERM), ("kill", SIGKILL)):
            if sig is not None:
                for svc in live:
                    if svc.proc is not None and svc.proc.poll() is None:
                        signal_group(svc.proc.pid, sig)
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline:
                if all(s.proc is None or s.proc.poll() is not None for s in live):
                    break
                if client is not None:
                    client.poll(0.05)
                else:
                    time.sleep(0.05)
        for svc in live:
            if svc.proc is not None:
                # the group may hold helpers (a llama server, a sandboxed child)
                if group_alive(svc.proc.pid):
                    signal_group(svc.proc.pid, SIGKILL)
                try:
                    svc.proc.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    pass
