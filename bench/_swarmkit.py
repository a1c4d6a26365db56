"""Shared helpers for the swarm benchmarks: start a replay swarm in a temp dir, read its registry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def cmd(name: str, /, **args: Any) -> dict[str, Any]:
    return {"thoughts": {"text": name, "reasoning": "", "plan": "", "criticism": "", "speak": name},
            "command": {"name": name, "args": args}}


WAIT = {"responses": [cmd("do_nothing")], "repeat": True}


class BenchSwarm:
    """A replay swarm for a benchmark; ``close()`` brings it down and kills leftovers."""

    def __init__(self, cassette: dict[str, Any], *, max_agents: int = 64, max_children: int = 64,
                 idle_wait: float = 600, limits: dict[str, Any] | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="swarm-bench-"))
        self.run_dir = self.tmp / "run"
        cfg = {
            "name": "bench", "goal": "benchmark", "root": "manager",
            "llm": {"provider": "replay", "cassette": "cassette.yaml"}, "memory": False,
            "limits": {"max_depth": 5, "max_agents": max_agents, "max_children": max_children,
                       "max_steps": 10_000, "max_wall_seconds": 3600, "idle_wait_seconds": idle_wait,
                       **(limits or {})},
            "agents": {
                "manager": {"role": "m", "commands": ["start_agent", "do_nothing", "task_complete"],
                            "can_start": ["worker"]},
                "worker": {"role": "w", "commands": ["start_agent", "do_nothing", "task_complete"],
                           "can_start": ["worker"]},
            },
        }
        cfg.update(extra or {})
        (self.tmp / "swarm.yaml").write_text(yaml.safe_dump(cfg))
        (self.tmp / "cassette.yaml").write_text(yaml.safe_dump(cassette))
        self.env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "orchestrator.cli", "--run-dir", str(self.run_dir),
                               *args], env=self.env, capture_output=True, text=True, timeout=timeout,
                              cwd=self.tmp)

    def up(self, *extra: str) -> None:
        p = self.cli("up", str(self.tmp / "swarm.yaml"), "--detach", *extra)
        if p.returncode:
            raise SystemExit(f"swarm up failed: {p.stderr}")

    def agents(self) -> dict[str, dict[str, Any]]:
        from orchestrator.supervisor.registry import Registry

        reg = Registry(self.run_dir / "registry.db", readonly=True)
        try:
            return {r.id: r.public() for r in reg.all()}
        finally:
            reg.close()

    def events(self, agent_id: str | None = None) -> list[dict[str, Any]]:
        from orchestrator.supervisor.registry import Registry

        reg = Registry(self.run_dir / "registry.db", readonly=True)
        try:
            return reg.events(agent_id)
        finally:
            reg.close()

    def wait_for(self, pred: Callable[[dict[str, dict[str, Any]]], bool], timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            a = self.agents()
            if pred(a):
                return a
            time.sleep(0.05)
        raise SystemExit(f"timed out waiting for {what}")

    def log_events(self, name: str) -> list[dict[str, Any]]:
        path = self.run_dir / "logs" / f"{name}.jsonl"
        return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]

    def close(self) -> None:
        self.cli("down", timeout=120)


def percentile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = min(len(xs) - 1, max(0, round(p / 100 * (len(xs) - 1))))
    return xs[k]
