"""What must hold after a chaos run, each judged from outside: the registry, the logs, the OS, the memory.

Each check returns a :class:`Verdict` (``held`` None: it does not apply to this run). Checks that look
at a moving system (the registry against the OS) poll until they hold or a generous deadline passes,
so a slow machine gets more time, never a different answer.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from chaoskit.swarm import ChaosSwarm, alive, wait
from chaoskit.workload import MAX_AGENTS, MAX_DEPTH, Workload, config

TERMINAL = ("done", "failed", "killed", "crashed")
ENDS = frozenset(TERMINAL)
HAS_PROCESS = ("running", "waiting", "throttled", "frozen")
SHOWN_LATE = 10.0  # seconds after which a message must have reached a target that kept building prompts
PROMPTS_LATE = 3  # ... at least this many prompts after it arrived
ROOT_GRACE = 30.0  # seconds past the wall limit for the stop ladder and a tick


@dataclass(frozen=True)
class Verdict:
    name: str
    held: bool | None
    detail: str


def agreement(swarm: ChaosSwarm, timeout: float = 30.0) -> Verdict:
    """No agent running without its live process; no live agent process the registry calls ended."""
    agreed = wait(lambda: not _disagreements(swarm), timeout)
    problems = [] if agreed else _disagreements(swarm)
    checks = len(swarm.agents())
    return Verdict("registry agrees with the OS", not problems,
                   "; ".join(problems[:4]) or f"{checks} agents, {len(swarm.agent_processes())} live processes")


def _disagreements(swarm: ChaosSwarm) -> list[str]:
    from orchestrator.supervisor.recovery import same_process

    problems, owned = [], set()
    for a in swarm.agents():
        if a["status"] in HAS_PROCESS or (a["status"] == "starting" and a["pid"]):
            if a["pid"] and same_process(a["pid"], a["created_at"]):
                owned.add(a["pid"])
            elif a["status"] != "starting":
                problems.append(f"{a['id']} is {a['status']} but its pid {a['pid']} is gone")
    for pid in swarm.agent_processes():
        if pid not in owned:
            names = [f"{a['id']} ({a['status']})" for a in swarm.agents() if a["pid"] == pid] or ["nobody"]
            problems.append(f"agent process {pid} is alive; the registry says {', '.join(names)}")
    return problems


def nothing_left(swarm: ChaosSwarm) -> Verdict:
    """After ``swarm down``: no process of the run is alive."""
    wait(lambda: not list(swarm.processes()), 20)
    left = list(swarm.processes())
    seen_alive = [p for p in swarm.seen if alive(p) and any(str(swarm.run_dir) in part for part in _cmdline(p))]
    names = [f"{p.pid} {' '.join(p.cmdline())[:60]}" for p in left] + [str(p) for p in seen_alive]
    return Verdict("no process alive after swarm down", not names,
                   "; ".join(names[:4]) or f"{len(swarm.seen)} pids of the run seen, none alive")


def _cmdline(pid: int) -> list[str]:
    import psutil

    try:
        return psutil.Process(pid).cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []


def depth_limit(swarm: ChaosSwarm) -> Verdict:
    """No agent deeper than max_depth; each one level below its parent."""
    agents = {a["id"]: a for a in swarm.agents()}
    bad = [f"{a['id']} at depth {a['depth']}" for a in agents.values()
           if a["depth"] > MAX_DEPTH or (a["parent"] and a["depth"] != agents[a["parent"]]["depth"] + 1)]
    deepest = max((a["depth"] for a in agents.values()), default=0)
    return Verdict(f"no agent deeper than max_depth ({MAX_DEPTH})", not bad,
                   "; ".join(bad[:4]) or f"deepest {deepest}, {len(agents)} agents")


def count_limit(swarm: ChaosSwarm) -> Verdict:
    """Never more than max_agents alive at once (from the registry's history of starts and ends)."""
    live: set[str] = set()
    peak, when = 0, ""
    for _ts, agent, event in swarm.events():
        if event == "spawned":
            live.add(agent)
        elif event in ENDS:
            live.discard(agent)
        if len(live) > peak:
            peak, when = len(live), f"at the start of {agent}"
    return Verdict(f"never more than max_agents ({MAX_AGENTS}) alive", peak <= MAX_AGENTS,
                   f"peak {peak} {when}")


def spend_within_budgets(swarm: ChaosSwarm) -> Verdict:
    """No agent's subtree spent more than its budget (the gateway's ledger against the registry's budgets;
    the root's subtree also against ``quotas.swarm``)."""
    if not swarm.budget_columns():
        return Verdict("spend within every budget", None, "no budgets in this version of the registry")
    agents = swarm.agents()
    spent = _subtree_spend(agents, swarm.ledger_spend())
    swarm_quota = (config(swarm.workload).get("quotas", {}).get("swarm", {}) or {}).get("max_tokens")
    over, checked = [], 0
    for a in agents:
        limits = {"tokens": a["budget_tokens"], "usd": a["budget_usd"]}
        if a["parent"] is None and not a["budget_override"] and swarm_quota is not None:
            limits["tokens"] = swarm_quota if limits["tokens"] is None else min(limits["tokens"], swarm_quota)
        for kind, limit in limits.items():
            if limit is None:
                continue
            checked += 1
            used = spent[a["id"]][0 if kind == "tokens" else 1]
            if used > limit:
                over.append(f"{a['id']}'s subtree spent {used:g} {kind} of its {limit:g}")
    met = sum(1 for a in agents if str(a["reason"] or "").startswith("budget_exhausted"))
    return Verdict("spend within every budget", not over,
                   "; ".join(over[:4]) or f"{checked} budgets held, {met} agents stopped at theirs")


def _subtree_spend(agents: list[dict[str, Any]], own: dict[str, tuple[float, float]]) -> dict[str, list[float]]:
    totals = {a["id"]: list(own.get(a["id"], (0.0, 0.0))) for a in agents}
    for a in reversed(agents):  # children come after their parents
        if a["parent"] in totals:
            totals[a["parent"]][0] += totals[a["id"]][0]
            totals[a["parent"]][1] += totals[a["id"]][1]
    return totals


def root_finished(swarm: ChaosSwarm, wall_limit: float) -> Verdict:
    """The root reached a terminal status within its wall limit."""
    root = next((a for a in swarm.agents() if a["parent"] is None), None)
    if root is None or root["status"] not in TERMINAL or root["ended_at"] is None:
        return Verdict("the root finishes within its wall limit", False,
                       f"root is {root['status'] if root else 'missing'}")
    took = root["ended_at"] - root["created_at"]
    return Verdict("the root finishes within its wall limit", took <= wall_limit + ROOT_GRACE,
                   f"{root['status']} after {took:.0f}s (limit {wall_limit:.0f}s)"
                   + (f", {root['reason']}" if root["reason"] else ""))


def memory_found(swarm: ChaosSwarm, workload: Workload) -> Verdict:
    """Every memory add an agent was told was stored is found by a search for its text; no request twice."""
    from memory.client import MemoryClient
    from orchestrator import runctl

    acked = swarm.acked_memory_ids()
    client = runctl.bus_client(swarm.run_dir)
    found: dict[int, Any] = {}
    try:
        mc = MemoryClient(client, timeout=60)
        for texts in workload.facts.values():
            for text in texts:
                found.update({h["id"]: (h.get("metadata") or {}).get("request")
                              for h in mc.search(text, k=20, namespaces=["shared"]) if h["text"] == text})
    finally:
        client.close()
    missing = sorted(i for i in acked if i not in found)
    twice = [r for r, n in Counter(r for r in found.values() if r).items() if n > 1]
    problems = [f"acknowledged id {i} of {acked[i]} not found" for i in missing[:3]]
    problems += [f"request {r} stored {n} times" for r, n in twice[:3]]
    return Verdict("every acknowledged memory add is found", not problems,
                   "; ".join(problems) or f"{len(acked)} acknowledged adds found, no request stored twice")


def messages_once(swarm: ChaosSwarm, sent: list[str]) -> Verdict:
    """Every message accepted for a live agent reached its model once (the target's prompts logs)."""
    inbox = swarm.inbox()
    shows, prompts = _shows_and_prompts(swarm)
    kept = {n["id"] for n in inbox}
    problems = [f"operator message {i} accepted but not in the registry" for i in sent if i not in kept]
    status = {a["id"]: a["status"] for a in swarm.agents()}
    tally: Counter[str] = Counter()
    for note in inbox:
        outcome, problem = _judge(note, shows.get(note["id"], []), prompts[note["agent_id"]],
                                  status.get(note["agent_id"]))
        tally[outcome] += 1
        if problem:
            problems.append(f"{note['id']} for {note['agent_id']}: {problem}")
    summary = ", ".join(f"{n} {what}" for what, n in tally.most_common())
    return Verdict("every accepted message reached its live target once", not problems,
                   "; ".join(problems[:3]) or f"{len(inbox)} messages: {summary}")


def _shows_and_prompts(swarm: ChaosSwarm) -> tuple[dict[str, list[tuple[int, float, str]]], dict[str, list[float]]]:
    shows: dict[str, list[tuple[int, float, str]]] = defaultdict(list)
    prompts: dict[str, list[float]] = defaultdict(list)
    for name in swarm.agent_logs():
        for e in swarm.log_events(name):
            if e.get("event") == "inbox_shown":
                for i in e.get("ids", []):
                    shows[i].append((e.get("pid", 0), e.get("ts", 0.0), name))
            elif e.get("event") == "step_started":
                prompts[name].append(e.get("ts", 0.0))
    return shows, prompts


def _judge(note: dict[str, Any], shown: list[tuple[int, float, str]], prompts: list[float],
           status: str | None) -> tuple[str, str]:
    """(outcome, problem) of one kept message; problem is "" when the rules held."""
    if any(agent != note["agent_id"] for _, _, agent in shown):
        return "misdelivered", "shown to another agent"
    pids = [pid for pid, _, _ in shown]
    if len(pids) != len(set(pids)):
        return "shown twice", "one process showed it twice"
    if note["acked_pid"] is not None:
        by_acker = [ts for pid, ts, _ in shown if pid == note["acked_pid"]]
        if len(by_acker) != 1:
            return "read", f"acknowledged by pid {note['acked_pid']}, which showed it {len(by_acker)} times"
        if any(ts > by_acker[0] for pid, ts, _ in shown if pid != note["acked_pid"]):
            return "read", "shown again after it was acknowledged"
        return ("read once" if len(shown) == 1 else "read once after a crash before its acknowledgement"), ""
    if status not in TERMINAL:
        return "unread", f"still unread and its target is {status}"
    late = [ts for ts in prompts if ts > note["created_at"] + SHOWN_LATE]
    if not shown and len(late) >= PROMPTS_LATE:
        return "lost", f"never shown, though its target built {len(late)} prompts after it arrived"
    return ("shown, target ended before acknowledging" if shown else "unread, target ended first"), ""
