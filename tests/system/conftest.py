"""Fixtures for system tests: real ``swarm`` processes on replay cassettes.

Every swarm a test starts is torn down at the end (``swarm down``, then a
SIGKILL to every process group the registry knows and to the supervisor),
even when the test fails.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import psutil
import pytest
import yaml

from tests.support import wait_until

ROOT = Path(__file__).resolve().parents[2]


def base_config(**over: Any) -> dict[str, Any]:
    """A small swarm config for tests (replay provider, no memory service)."""
    cfg: dict[str, Any] = {
        "name": "t",
        "goal": "test goal",
        "root": "manager",
        "llm": {"provider": "replay", "cassette": "cassette.yaml"},
        "workspace": "workspace",
        "memory": False,
        "limits": {"max_depth": 5, "max_agents": 32, "max_children": 8, "max_steps": 20,
                   "max_wall_seconds": 120, "idle_wait_seconds": 20, "message_timeout": 20},
        "agents": {
            "manager": {"role": "a manager", "commands": ["start_agent", "message_agent", "list_agents",
                                                          "delete_agent", "do_nothing", "task_complete"],
                        "can_start": ["worker"]},
            "worker": {"role": "a worker", "commands": ["start_agent", "message_agent", "do_nothing",
                                                        "write_to_file", "read_file", "task_complete"],
                       "can_start": ["worker"]},
        },
    }
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(cfg.get(k), dict):
            cfg[k] = {**cfg[k], **v}
        else:
            cfg[k] = v
    return cfg


def cmd(name: str, /, **args: Any) -> dict[str, Any]:
    """One cassette answer issuing command ``name``."""
    return {"thoughts": {"text": f"do {name}", "reasoning": "test", "plan": "- test", "criticism": "",
                         "speak": f"doing {name}"},
            "command": {"name": name, "args": args}}


def speak(text: str, name: str = "do_nothing", /, **args: Any) -> dict[str, Any]:
    """An answer whose ``speak`` is ``text`` (the reply to a message_agent question)."""
    a = cmd(name, **args)
    a["thoughts"]["speak"] = text
    return a


class SwarmRun:
    """One swarm started by a test, driven through the real ``swarm`` CLI."""

    def __init__(self, tmp: Path, config: dict[str, Any], cassette: dict[str, Any]) -> None:
        self.dir = tmp
        self.run_dir = tmp / "run"
        self.config_path = tmp / "swarm.yaml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        (tmp / "cassette.yaml").write_text(yaml.safe_dump(cassette, sort_keys=False, allow_unicode=True))
        self.workspace = tmp / config.get("workspace", "workspace")
        self.env = {**os.environ, "SWARM_RUN_DIR": str(self.run_dir), "PYTHONPATH": str(ROOT)}
        self.env.pop("OPENAI_API_KEY", None)
        self.env.pop("SWARM_LLM_PROVIDER", None)
        self.seen_pids: set[int] = set()

    def cli(self, *args: str, timeout: float = 120, check: bool = False) -> subprocess.CompletedProcess:
        """Run ``swarm ARGS`` and return the completed process (text output)."""
        p = subprocess.run([sys.executable, "-m", "orchestrator.cli", *args], cwd=self.dir, env=self.env,
                           capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"swarm {' '.join(args)} exited {p.returncode}: {p.stderr.strip()}")
        return p

    def up(self, *extra: str) -> subprocess.CompletedProcess:
        return self.cli("up", str(self.config_path), "--detach", *extra, check=True)

    def ps(self) -> list[dict[str, Any]]:
        p = self.cli("ps", "--json", check=True)
        agents = json.loads(p.stdout)
        for a in agents:
            if a.get("pid"):
                self.seen_pids.add(a["pid"])
        return agents

    def agents(self) -> dict[str, dict[str, Any]]:
        return {a["id"]: a for a in self.ps()}

    def wait_for(self, predicate: Callable[[dict[str, dict[str, Any]]], Any], timeout: float = 60,
                 what: str = "condition") -> dict[str, dict[str, Any]]:
        """Poll ``swarm ps`` until ``predicate(agents_by_id)`` is true; fail after ``timeout``."""
        last: dict[str, dict[str, Any]] = {}

        def check() -> dict[str, dict[str, Any]] | None:
            nonlocal last
            last = self.agents()
            return last if predicate(last) else None

        try:
            return wait_until(check, timeout, what, step=0.1)
        except AssertionError:
            raise AssertionError(f"timed out waiting for {what}; agents: {json.dumps(last, indent=1)}") from None

    def supervisor_pid(self) -> int | None:
        try:
            return int((self.run_dir / "supervisor.pid").read_text())
        except (FileNotFoundError, ValueError):
            return None

    def log_events(self, name: str) -> list[dict[str, Any]]:
        path = self.run_dir / "logs" / f"{name}.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def teardown(self) -> None:
        try:
            if self.run_dir.exists():
                try:
                    self.ps()
                except (AssertionError, ValueError, subprocess.TimeoutExpired):
                    pass
                self.cli("down", timeout=90)
        finally:
            sup = self.supervisor_pid()
            for pid in list(self.seen_pids) + ([sup] if sup else []) + self.stray_pids():
                _kill_group(pid)

    def stray_pids(self) -> list[int]:
        """Every live process whose command line names this run directory (supervisor, services, agents)."""
        marker = str(self.run_dir)
        out = []
        for proc in psutil.process_iter(["pid", "cmdline"]):
            try:
                if any(marker in part for part in proc.info["cmdline"] or ()):
                    out.append(proc.info["pid"])
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return out


def _kill_group(pid: int) -> None:
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return
        os.killpg(pid, signal.SIGKILL)
    except (psutil.NoSuchProcess, ProcessLookupError, PermissionError):
        pass


def commands_run(run: SwarmRun, agent: str, command: str) -> int:
    """How many times ``agent`` ran ``command`` (the command_done events of its log)."""
    return sum(1 for e in run.log_events(agent)
               if e.get("event") == "command_done" and e.get("command") == command)


def alive(pid: int | None) -> bool:
    """Whether ``pid`` is a live (non-zombie) process."""
    if not pid:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False





@pytest.fixture
def swarm(tmp_path: Path):
    """Factory: ``swarm(config_dict, cassette_dict) -> SwarmRun``; all torn down afterwards."""
    runs: list[SwarmRun] = []

    def make(config: dict[str, Any], cassette: dict[str, Any], sub: str = "") -> SwarmRun:
        d = tmp_path / sub if sub else tmp_path
        d.mkdir(parents=True, exist_ok=True)
        run = SwarmRun(d, config, cassette)
        runs.append(run)
        return run

    yield make
    for run in runs:
        run.teardown()
