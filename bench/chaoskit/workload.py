"""The chaos run's swarm: its config and replay cassettes, sized to the run's duration.

About 36 agents: the root ``manager`` (depth 0) starts ``LEADS`` leads, then spends its model calls
waiting (``delay_s``, then a quick ``list_agents``) and now and then asks a lead how far it is
(``message_agent``); it finishes when its cassette ends, after about the duration asked for. Each
lead (depth 1) starts ``WORKERS`` workers one after the other, spread over the first ``WORK`` of the
run; between two starts it writes a status file, remembers a fact, asks its last worker a question
and waits for news. A worker (depth 2) works in cycles (write, remember, read, append, wait) for
about one and a half of its lead's segments, then finishes with a result for its lead; each lead's
first worker starts a helper (depth 3) whose own ``start_agent`` is refused (``max_depth`` 3); each
lead's ``CAPPED``-th worker has a budget of half the tokens its work needs, so the gateway stops it
(``on_exhausted: kill``) halfway. Every lead's subtree and the swarm have budgets too, generous ones
(checked, never met unless something counts twice). Only parents ask children questions, so no two
agents wait on each other.

Every answer carries a ``delay_s``, the time the model "takes", so the run lasts about the duration
asked for. The teams' work is sized to end well before the root's waits do (``WORK``), so a loaded
machine that runs the teams slower still gets every fault of the schedule; what the root's end cuts
short is stopped by the supervisor (its parent ended), which the invariants cover too. ``max_agents``
is below the peak the leads ask for, so the limit is met now and then.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

LEADS = 5
WORKERS = 5  # per lead, started one after the other
MAX_AGENTS = 16
MAX_DEPTH = 3
WORK = 0.7  # the teams' work is sized to this fraction of the duration (the root waits for all of it)
ROOT_WAIT = 4.0  # the root's model "takes" this long per waiting step
IDLE_WAIT = 1.0  # seconds do_nothing waits for news (the config's idle_wait_seconds)
LEAD_PAIR = 2.8  # about how long a lead's wait-and-write pair of steps takes (measured unloaded)
WORKER_CYCLE = 4.0  # about how long a worker's cycle of five steps takes (measured unloaded)
CAPPED = 3  # each lead's third worker runs out of budget halfway
TOKENS_PER_CALL = 900  # about what one model call of this workload counts (replay: 4 characters a token)
EVENTS_PER_AGENT = 3  # registry events an agent adds at least (spawned, ready, its end)


def cmd(name: str, delay: float, /, **args: Any) -> dict[str, Any]:
    """One cassette answer issuing command ``name`` after ``delay`` seconds of model time."""
    speak = f"{name} done" if name != "do_nothing" else "all is well, carrying on"
    return {"thoughts": {"text": name, "reasoning": "chaos workload", "plan": "- keep going",
                         "criticism": "", "speak": speak},
            "command": {"name": name, "args": args}, "delay_s": delay}


@dataclass
class Workload:
    """The swarm of one chaos run: config, cassettes, the facts each agent remembers."""

    duration: float
    cassette: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    facts: dict[str, list[str]] = field(default_factory=dict)  # agent name -> texts it memory_adds

    @property
    def segment(self) -> float:
        """Seconds between two worker starts of a lead."""
        return WORK * self.duration / WORKERS

    def build(self) -> "Workload":
        """Write every agent's cassette (idempotent)."""
        self.cassette, self.facts = {}, {}
        self.cassette["manager"] = self._root()
        for lead in range(1, LEADS + 1):
            self.cassette[f"lead{lead}"] = self._lead(lead)
        return self

    def expected_progress(self) -> int:
        """A lower bound of the run's progress (steps + registry events) when nothing goes wrong."""
        return sum(len(answers) + EVENTS_PER_AGENT for answers in self.cassette.values())

    def _fact(self, name: str, what: str) -> str:
        text = f"chaos fact from {name}: {what}"
        self.facts.setdefault(name, []).append(text)
        return text

    def _root(self) -> list[dict[str, Any]]:
        out = [cmd("start_agent", 0.2, name=f"lead{i}", task=f"lead team {i}", role="lead")
               for i in range(1, LEADS + 1)]
        for step in range(max(2, round(self.duration / ROOT_WAIT))):  # the waits make the duration
            out.append(cmd("list_agents", ROOT_WAIT))
            if step % 5 == 4:
                lead = f"lead{1 + (step // 5) % LEADS}"
                out.append(cmd("message_agent", 0.5, key=lead, message=f"how far is {lead}?"))
        return out + [cmd("task_complete", 0.2, reason="every team has worked")]

    def _lead(self, lead: int) -> list[dict[str, Any]]:
        name, out = f"lead{lead}", []
        pairs = max(1, round(self.segment / LEAD_PAIR))
        for k in range(1, WORKERS + 1):
            worker = f"w{lead}-{k}"
            self.cassette[worker] = self._worker(worker, helper=f"h{lead}" if k == 1 else "")
            role = "capped" if k == CAPPED else "worker"
            out += [cmd("start_agent", 0.2, name=worker, task=f"work item {worker}", role=role),
                    cmd("memory_add", 0.5, text=self._fact(name, f"team {lead} started {worker}")),
                    cmd("message_agent", 0.5, key=worker, message=f"how is {worker} doing?")]
            out += self._pairs(name, k, pairs)
        tail = self._pairs(name, WORKERS + 1, max(1, round(0.6 * pairs)))  # the last worker's result arrives
        return out + tail + [cmd("task_complete", 0.2, reason=f"{name} ran {WORKERS} workers")]

    @staticmethod
    def _pairs(name: str, k: int, pairs: int) -> list[dict[str, Any]]:
        return [answer for p in range(pairs) for answer in (
            cmd("do_nothing", 1.0),
            cmd("write_to_file", 0.5, file=f"{name}.txt", text=f"{name}: worker {k}, pair {p}\n"))]

    def _worker(self, name: str, helper: str) -> list[dict[str, Any]]:
        out = []
        if helper:
            out.append(cmd("start_agent", 0.3, name=helper, task=f"help {name}", role="worker"))
            self.cassette[helper] = [
                cmd("start_agent", 0.3, name=f"{helper}-deep", task="too deep", role="worker"),
                cmd("memory_add", 0.5, text=self._fact(helper, f"{helper} helped")),
                cmd("task_complete", 0.3, reason=f"{helper} helped")]
        for c in range(1, max(1, round(1.5 * self.segment / WORKER_CYCLE)) + 1):
            out += [cmd("write_to_file", 0.8, file=f"{name}.txt", text=f"work of {name}, cycle {c}\n"),
                    cmd("memory_add", 0.6, text=self._fact(name, f"{name} finished cycle {c}")),
                    cmd("read_file", 0.4, file=f"{name}.txt"),
                    cmd("append_to_file", 0.4, file=f"{name}.txt", text="checked\n"),
                    cmd("do_nothing", 0.5)]
        return out + [cmd("task_complete", 0.3, reason=f"result of {name}")]


    def budgets(self) -> dict[str, int]:
        """Token budgets: a capped worker's (half its work), a lead subtree's and the swarm's (generous)."""
        calls = {name: len(answers) for name, answers in self.cassette.items()}
        capped = calls[f"w1-{CAPPED}"]
        team = max(sum(n for name, n in calls.items() if name.startswith((f"lead{lead}", f"w{lead}-", f"h{lead}")))
                   for lead in range(1, LEADS + 1))
        return {"capped": capped * TOKENS_PER_CALL // 2, "lead": 2 * team * TOKENS_PER_CALL,
                "swarm": 3 * sum(calls.values()) * TOKENS_PER_CALL}


def config(workload: Workload) -> dict[str, Any]:
    """The swarm YAML of the run (its cassette in ``cassette.yaml`` beside it)."""
    restart = {"policy": "on-crash", "max_restarts": 3, "period_seconds": 60}
    budgets = workload.budgets()
    worker_commands = ["start_agent", "write_to_file", "read_file", "append_to_file", "memory_add", "do_nothing",
                       "task_complete"]
    return {
        "name": "chaos", "goal": "keep working while everything fails", "root": "manager",
        "llm": {"provider": "replay", "cassette": "cassette.yaml"}, "workspace": "workspace",
        "memory": True,
        "quotas": {"swarm": {"max_tokens": budgets["swarm"]}, "on_exhausted": "kill"},
        "limits": {"max_depth": MAX_DEPTH, "max_agents": MAX_AGENTS, "max_children": WORKERS + 1,
                   "max_steps": 2000, "max_wall_seconds": 2 * workload.duration + 120,
                   "loop_threshold": 1000, "idle_wait_seconds": IDLE_WAIT, "message_timeout": 20},
        "agents": {
            "manager": {"role": "Lead the teams.", "commands": ["start_agent", "message_agent", "list_agents",
                                                                "do_nothing", "task_complete"],
                        "can_start": ["lead"], "restart": restart},
            "lead": {"role": "Run a team.", "commands": ["start_agent", "message_agent", "write_to_file",
                                                         "memory_add", "do_nothing", "task_complete"],
                     "can_start": ["worker", "capped"], "restart": restart,
                     "budget": {"max_tokens": budgets["lead"]}},
            "worker": {"role": "Do one work item.", "commands": worker_commands, "can_start": ["worker"],
                       "restart": restart},
            "capped": {"role": "Do one work item on a small budget.", "commands": worker_commands,
                       "can_start": ["worker"], "restart": restart, "budget": {"max_tokens": budgets["capped"]}},
        },
    }
