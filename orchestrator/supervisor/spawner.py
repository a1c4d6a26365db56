"""The supervisor's side of the zygote: spawn agents and learn of their exits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Callable

from agents.confine.environment import agent_environment
from swarm_core.errors import SwarmError
from swarm_core.spec import AgentSpec


def child_env() -> dict[str, str]:
    """Our environment, with this source tree first on PYTHONPATH (for every process we start)."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


class SpawnError(SwarmError):
    """The zygote could not start an agent process."""

    code = "spawn_failed"


class Spawner:
    """Starts agent processes through a preloaded zygote.

    ``on_exit(pid, code)`` is called from a reader thread for every agent
    exit the zygote reaps; hand it to your loop (``call_soon_threadsafe``).
    A zygote that died can be started again (:meth:`start`); the agents the
    old one forked are no longer its children, so nobody reports their exits.
    """

    def __init__(self, run_dir: Path, on_exit: Callable[[int, int], None], log: Any = None,
                 name: str = "zygote") -> None:
        self.run_dir = Path(run_dir)
        self.name = name  # its output goes to logs/<name>.out
        self._on_exit = on_exit
        self._log = log
        self._proc: subprocess.Popen[bytes] | None = None
        self._req = 0
        # request number -> (answered, the answer, the zygote asked)
        self._waiting: dict[int, tuple[threading.Event, dict[str, Any], Any]] = {}
        self._lock = threading.Lock()
        self._reader: threading.Thread | None = None
        self._ready = threading.Event()  # set when the zygote said ready, or its output ended
        self._preloaded = False  # the current zygote said ready

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def alive(self) -> bool:
        """Whether the current zygote process is running (it may still be preloading)."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def ready(self) -> bool:
        """Whether the current zygote is running and has preloaded the agent runtime."""
        return self._preloaded and self.alive

    @property
    def exit_code(self) -> int | None:
        """The exit code of a zygote that ended (negative: the signal), None while it runs."""
        return self._proc.poll() if self._proc is not None else None

    def start(self, timeout: float = 30.0, *, wait: bool = True) -> None:
        """Start the zygote; with ``wait``, until it has preloaded the agent runtime (else spawns wait)."""
        logs = self.run_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        err = open(logs / f"{self.name}.out", "ab")  # noqa: SIM115 - handed to the child
        # rebuilt from an allow-list: no API key or SWARM_* setting of `swarm up` reaches an agent
        env = agent_environment(os.environ, str(Path(__file__).resolve().parents[2]))
        ready = self._ready = threading.Event()
        self._preloaded = False
        proc = self._proc = subprocess.Popen(
            # the run dir in the command line names the swarm in `ps` (agents inherit it)
            [sys.executable, "-m", "orchestrator.supervisor.zygote", "--run-dir", str(self.run_dir)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
            start_new_session=True, env=env, close_fds=True,
        )
        err.close()
        self._reader = threading.Thread(target=self._read, args=(proc, ready), name="zygote-reader",
                                        daemon=True)
        self._reader.start()
        if wait and not ready.wait(timeout):
            self.kill()
            out = logs / f"{self.name}.out"
            raise SpawnError(f"the zygote did not start within {timeout:g}s; see {out}")

    def _read(self, proc: subprocess.Popen[bytes], ready: threading.Event) -> None:
        stdout = proc.stdout
        if stdout is None:
            return
        for raw in stdout:
            try:
                msg = json.loads(raw)
            except ValueError:
                continue
            op = msg.get("op")
            if op == "ready":
                self._preloaded = proc is self._proc
                ready.set()
            elif op == "exit":
                self._on_exit(int(msg["pid"]), int(msg["code"]))
            elif op in ("spawned", "error"):
                with self._lock:
                    slot = self._waiting.get(msg.get("req"))
                if slot is not None:
                    slot[1].update(msg)
                    slot[0].set()
                elif self._log is not None:
                    self._log.warning("zygote_message_unclaimed", message=msg)
        # EOF: the zygote is gone; wake anybody waiting (they see no answer)
        ready.set()
        with self._lock:
            waiting = [(event, answer) for event, answer, asked in self._waiting.values() if asked is proc]
        for event, answer in waiting:
            answer.setdefault("error", "the zygote exited")
            event.set()

    def spawn(self, spec: AgentSpec, timeout: float = 10.0) -> int:
        """Fork an agent from the zygote; return its pid (= its process group id)."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            raise SpawnError("the zygote is not running")
        if not self._ready.wait(timeout) or not self.ready:
            raise SpawnError(f"the zygote was not ready within {timeout:g}s")
        with self._lock:
            self._req += 1
            req = self._req
            ev: threading.Event = threading.Event()
            answer: dict[str, Any] = {}
            self._waiting[req] = (ev, answer, proc)
        try:
            line = json.dumps({"op": "spawn", "req": req, "spec": spec.to_dict()}) + "\n"
            if proc.stdin is None:
                raise SpawnError("the zygote has no stdin")
            proc.stdin.write(line.encode())
            proc.stdin.flush()
            if not ev.wait(timeout) or "pid" not in answer:
                raise SpawnError(answer.get("error") or f"the zygote gave no pid within {timeout:g}s")
            return int(answer["pid"])
        except (BrokenPipeError, OSError) as exc:
            raise SpawnError(f"cannot talk to the zygote: {exc}") from None
        finally:
            with self._lock:
                self._waiting.pop(req, None)

    def stop(self) -> None:
        """Close the zygote's stdin (it exits; agents are not touched) and reap it."""
        if self._proc is None:
            return
        try:
            if self._proc.stdin:
                self._proc.stdin.close()
            self._proc.wait(timeout=3)
        except (OSError, subprocess.TimeoutExpired):
            self.kill()

    def kill(self) -> None:
        """Kill the zygote at once (idempotent)."""
        if self._proc is not None and self._proc.poll() is None:
            try:
                self._proc.kill()
                self._proc.wait(timeout=3)
            except (OSError, subprocess.TimeoutExpired):
                pass
