"""One chaos run's swarm as the bench sees it from outside: its CLI, registry, logs and processes."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import psutil
import yaml

from chaoskit.workload import Workload, config

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("gateway", "memory")
ZYGOTE = "orchestrator.supervisor.zygote"  # the module in a zygote's (and so its agents') argv
SUPERVISOR = "orchestrator.supervisor"  # the module in a supervisor's argv


class ChaosSwarm:
    """A swarm in a temporary run directory, read through its registry (read-only) and its logs."""

    def __init__(self, workload: Workload, workdir: Path | None = None) -> None:
        self.workload = workload
        self.tmp = Path(tempfile.mkdtemp(prefix="swarm-chaos-", dir=workdir))
        self.run_dir = self.tmp / "run"
        self.config_path = self.tmp / "swarm.yaml"
        self.config_path.write_text(yaml.safe_dump(config(workload), sort_keys=False))
        (self.tmp / "cassette.yaml").write_text(yaml.safe_dump(workload.cassette, sort_keys=False))
        self.env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.seen: set[int] = set()  # every pid of the run ever seen (agents, services, supervisors)

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "orchestrator.cli", "--run-dir", str(self.run_dir),
                               *args], env=self.env, capture_output=True, text=True, timeout=timeout,
                              cwd=self.tmp)

    def up(self, *extra: str) -> subprocess.CompletedProcess:
        return self.cli("up", str(self.config_path), "--detach", *extra)

    # ------------------------------------------------------------ the registry

    def query(self, sql: str, *args: Any) -> list[tuple]:
        """Rows of a read-only query of the registry ([] while it cannot be read)."""
        try:
            conn = sqlite3.connect(f"file:{self.run_dir / 'registry.db'}?mode=ro", uri=True, timeout=5)
        except sqlite3.Error:
            return []
        try:
            return conn.execute(sql, args).fetchall()
        except sqlite3.Error:
            return []
        finally:
            conn.close()

    def progress(self) -> int:
        """Steps of every agent plus registry events: it only grows, whatever the clock says."""
        rows = self.query("SELECT (SELECT COALESCE(SUM(steps), 0) FROM agents) + "
                          "(SELECT COALESCE(MAX(seq), 0) FROM events)")
        return int(rows[0][0]) if rows else 0

    def agents(self) -> list[dict[str, Any]]:
        cols = ("id", "name", "role", "parent", "depth", "pid", "status", "steps", "tokens", "cost_usd",
                "created_at", "started_at", "ended_at", "restarts", "reason", *self.budget_columns())
        rows = self.query(f"SELECT {', '.join(cols)} FROM agents ORDER BY seq")
        out = [dict(zip(cols, r)) for r in rows]
        self.seen.update(a["pid"] for a in out if a["pid"])
        return out

    def meta(self, key: str, default: Any = None) -> Any:
        rows = self.query("SELECT value FROM meta WHERE key = ?", key)
        return json.loads(rows[0][0]) if rows else default

    def budget_columns(self) -> list[str]:
        """The budget columns of the agents table (empty before budgets exist)."""
        budget = ("budget_tokens", "budget_usd", "budget_override")
        return [r[1] for r in self.query("PRAGMA table_info(agents)") if r[1] in budget]

    def ledger_spend(self) -> dict[str, tuple[float, float]]:
        """Each agent's own spend (tokens, dollars) as the gateway's ledger has it (read-only)."""
        try:
            conn = sqlite3.connect(f"file:{self.run_dir / 'ledger.db'}?mode=ro", uri=True, timeout=5)
        except sqlite3.Error:
            return {}
        try:
            return {r[0]: (float(r[1]), float(r[2]))
                    for r in conn.execute("SELECT agent, tokens, cost_usd FROM spend").fetchall()}
        except sqlite3.Error:
            return {}
        finally:
            conn.close()

    def inbox(self) -> list[dict[str, Any]]:
        cols = ("id", "agent_id", "sender", "kind", "created_at", "acked_at", "acked_pid")
        return [dict(zip(cols, r)) for r in self.query(f"SELECT {', '.join(cols)} FROM inbox ORDER BY seq")]

    def events(self) -> list[tuple[float, str, str]]:
        return [(r[0], r[1], r[2]) for r in self.query("SELECT ts, agent_id, event FROM events ORDER BY seq")]

    # ------------------------------------------------------------ processes

    def supervisor_pid(self) -> int | None:
        try:
            pid = int((self.run_dir / "supervisor.pid").read_text())
        except (OSError, ValueError):
            return None
        self.seen.add(pid)
        return pid if alive(pid) else None

    def service_pid(self, name: str) -> int | None:
        pid, _created = (self.meta("service_pids", {}) or {}).get(name, [None, 0])
        if pid:
            self.seen.add(pid)
        return pid if pid and alive(pid) else None

    def processes(self) -> Iterator[psutil.Process]:
        """Every live process whose command line names this run directory."""
        marker = str(self.run_dir)
        for proc in psutil.process_iter(["pid", "cmdline", "status"]):
            try:
                if proc.info["status"] != psutil.STATUS_ZOMBIE and \
                        any(marker in part for part in proc.info["cmdline"] or ()):
                    yield proc
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue

    def agent_processes(self) -> dict[int, psutil.Process]:
        """Live agent processes: forked from a zygote (its command line), but not a supervisor's zygote."""
        out = {}
        for proc in self.processes():
            try:
                parent = proc.parent()
                zygote = parent is not None and SUPERVISOR in parent.cmdline()
                if ZYGOTE in proc.cmdline() and not zygote:
                    out[proc.pid] = proc
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        self.seen.update(out)
        return out

    # ------------------------------------------------------------ logs

    def log_events(self, name: str) -> Iterator[dict[str, Any]]:
        path = self.run_dir / "logs" / f"{name}.jsonl"
        if not path.exists():
            return
        for line in path.read_text(errors="replace").splitlines():
            try:
                yield json.loads(line)
            except ValueError:
                continue  # a line cut by a kill

    def agent_logs(self) -> list[str]:
        """The names of the agents' log files (not the services')."""
        skip = {"supervisor", "zygote", *SERVICES}
        return sorted(p.stem for p in (self.run_dir / "logs").glob("*.jsonl") if p.stem not in skip)

    def acked_memory_ids(self) -> dict[int, str]:
        """Memory ids an agent was told its memory_add got (id -> agent)."""
        out = {}
        for name in self.agent_logs():
            for e in self.log_events(name):
                if e.get("event") == "command_done" and e.get("command") == "memory_add" and e.get("ok"):
                    found = re.search(r"#(\d+)", str(e.get("result", "")))
                    if found:
                        out[int(found.group(1))] = name
        return out


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait(cond: Any, timeout: float, step: float = 0.2) -> Any:
    """Poll ``cond`` until truthy or ``timeout`` seconds pass; its last value."""
    end = time.monotonic() + timeout
    while True:
        value = cond()
        if value or time.monotonic() >= end:
            return value
        time.sleep(step)
