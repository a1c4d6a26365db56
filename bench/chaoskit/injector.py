"""Carrying the faults out: SIGKILL an agent, the gateway, the memory service or the supervisor (then
``swarm up --resume``), SIGSTOP an agent for a while; and the operator's messages of the workload.

Victims are chosen when the fault fires, with the fault's own draw, among the candidates of that
moment sorted by id (the root is never a victim: the run must go on). A fault with no candidate (the
service is being restarted, no agent is running) is skipped and not counted as injected.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from chaoskit.schedule import Fault
from chaoskit.swarm import ChaosSwarm, alive, wait

STOP_CAP = 10.0  # seconds a SIGSTOPped agent is held at most (the supervisor may kill it as hung first)
WORKING = ("running", "waiting", "throttled")


@dataclass
class Injection:
    """A fault as it was carried out."""

    fault: Fault
    progress: int
    victim: str = ""
    injected: bool = True
    note: str = ""


@dataclass
class Injector:
    """Fires faults at a swarm and remembers what it did."""

    swarm: ChaosSwarm
    say: Callable[[str], None] = print
    done: list[Injection] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)  # ids of the operator's messages the supervisor accepted
    _stopped: list[tuple[int, int, float]] = field(default_factory=list)  # pid, until progress, deadline

    def fire(self, fault: Fault, progress: int) -> Injection:
        actions: dict[str, Callable[[Fault], tuple[str, bool, str]]] = {
            "agent_kill": self._agent_kill, "agent_stop": self._agent_stop, "gateway_kill": self._gateway_kill,
            "memory_kill": self._memory_kill, "supervisor_kill": self._supervisor_kill, "send": self._send}
        victim, injected, note = actions[fault.kind](fault)
        done = Injection(fault, progress, victim, injected, note)
        self.done.append(done)
        if fault.kind != "send":
            self.say(f"  progress {progress:5d}: {fault.kind:<16} {victim or '-':<14} "
                     f"{'' if injected else 'skipped: '}{note}")
        return done

    def skip(self, fault: Fault, progress: int, why: str) -> None:
        """Record a fault that was not carried out (counted as skipped)."""
        self.done.append(Injection(fault, progress, "", False, why))

    def injected(self, kind: str) -> int:
        return sum(1 for i in self.done if i.fault.kind == kind and i.injected)

    # ------------------------------------------------------------ agents

    def _victims(self) -> list[dict[str, Any]]:
        return sorted((a for a in self.swarm.agents() if a["parent"] and a["status"] in WORKING
                       and alive(a["pid"])), key=lambda a: a["id"])

    @staticmethod
    def _pick(fault: Fault, items: list[Any]) -> Any:
        return items[int(fault.pick * len(items))] if items else None

    def _agent_kill(self, fault: Fault) -> tuple[str, bool, str]:
        victim = self._pick(fault, self._victims())
        if victim is None:
            return "", False, "no agent running"
        os.kill(victim["pid"], signal.SIGKILL)
        return victim["id"], True, f"pid {victim['pid']}"

    def _agent_stop(self, fault: Fault) -> tuple[str, bool, str]:
        victim = self._pick(fault, self._victims())
        if victim is None:
            return "", False, "no agent running"
        os.kill(victim["pid"], signal.SIGSTOP)
        self._stopped.append((victim["pid"], self.swarm.progress() + fault.hold, time.monotonic() + STOP_CAP))
        return victim["id"], True, f"pid {victim['pid']} for {fault.hold} progress (at most {STOP_CAP:g}s)"

    def resume_due(self, progress: int) -> None:
        """SIGCONT the stopped agents whose time is up."""
        now = time.monotonic()
        for entry in [e for e in self._stopped if e[1] <= progress or e[2] <= now]:
            self._stopped.remove(entry)
            _signal(entry[0], signal.SIGCONT)

    def resume_all(self) -> None:
        for pid, _, _ in self._stopped:
            _signal(pid, signal.SIGCONT)
        self._stopped.clear()

    # ------------------------------------------------------------ processes of the swarm

    def _gateway_kill(self, fault: Fault) -> tuple[str, bool, str]:
        return self._service_kill("gateway")

    def _memory_kill(self, fault: Fault) -> tuple[str, bool, str]:
        return self._service_kill("memory")

    def _service_kill(self, name: str) -> tuple[str, bool, str]:
        pid = self.swarm.service_pid(name)
        if pid is None:
            return name, False, "not running (being restarted)"
        os.kill(pid, signal.SIGKILL)
        return name, True, f"pid {pid}"

    def _supervisor_kill(self, fault: Fault) -> tuple[str, bool, str]:
        pid = self.swarm.supervisor_pid()
        if pid is None:
            return "supervisor", False, "not running"
        os.kill(pid, signal.SIGKILL)
        wait(lambda: not alive(pid), 10)
        t0 = time.monotonic()
        for _ in range(3):
            p = self.swarm.up("--resume")
            if p.returncode == 0:
                return "supervisor", True, f"pid {pid}; resumed in {time.monotonic() - t0:.1f}s"
            time.sleep(1.0)  # e.g. the old supervisor's socket is still being released
        return "supervisor", True, f"pid {pid}; RESUME FAILED: {p.stderr.strip()[-300:]}"

    # ------------------------------------------------------------ the operator

    def _send(self, fault: Fault) -> tuple[str, bool, str]:
        from orchestrator import runctl
        from swarm_core import messages as m
        from swarm_core.errors import SwarmError

        targets = sorted(a["id"] for a in self.swarm.agents() if a["status"] in WORKING)
        target = self._pick(fault, targets)
        if target is None:
            return "", False, "no agent running"
        text = f"chaos note {len(self.done)} for {target}"
        try:
            reply = runctl.ask_once(self.swarm.run_dir, lambda rid: m.OperatorMessage(target, text, rid), 15.0)
        except SwarmError as exc:
            return target, False, f"not accepted: {exc.code}"
        self.sent.append(str(reply.info.get("message_id", "")))
        return target, True, "accepted"


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass  # it died meanwhile (the supervisor may have killed it as hung)
