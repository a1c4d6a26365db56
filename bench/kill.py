"""Hard kill of a 50-agent subtree: seconds from the request until every pid is gone.

Target: ≤ 0.2 s. The raw baseline is os.killpg(SIGKILL) of 50 idle sleeping
children of this script plus waiting for their exit, measured in the same run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from _swarmkit import WAIT, BenchSwarm, cmd, percentile

from orchestrator.runctl import gone

LEAVES = 49  # + the hub = 50 agents in the subtree
ROUNDS = 3


def raw_kill(n: int) -> float:
    procs = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
             for _ in range(n)]
    t = time.perf_counter()
    for p in procs:
        os.killpg(p.pid, signal.SIGKILL)
    for p in procs:
        p.wait()
    return time.perf_counter() - t


def one_round() -> float:
    from orchestrator import runctl
    from swarm_core import messages as m

    cassette = {"manager": {"responses": [cmd("start_agent", name="hub", task="hub", role="worker"),
                                          cmd("do_nothing")], "repeat": True},
                "hub": {"responses": [cmd("start_agent", name=f"leaf{i}", task="idle", role="worker")
                                      for i in range(LEAVES)] + [cmd("do_nothing")], "repeat": True}}
    for i in range(LEAVES):
        cassette[f"leaf{i}"] = WAIT
    sw = BenchSwarm(cassette, max_agents=LEAVES + 4, max_children=LEAVES + 1)
    try:
        sw.up()
        agents = sw.wait_for(lambda a: sum(1 for x in a.values() if x["status"] in ("running", "waiting"))
                             >= LEAVES + 2, 180, "50-agent subtree up")
        pids = [a["pid"] for k, a in agents.items() if k != "manager"]
        t = time.perf_counter()
        runctl.ask(sw.run_dir, m.DeleteAgent("hub", reason="bench", hard=True))
        while not all(gone(p) for p in pids):
            time.sleep(0.001)
        return time.perf_counter() - t
    finally:
        sw.close()


def main() -> None:
    raw = [raw_kill(LEAVES + 1) for _ in range(ROUNDS)]
    ours = [one_round() for _ in range(ROUNDS)]
    print(f"kill: hard kill of a {LEAVES + 1}-agent subtree until every pid is gone ({ROUNDS} rounds)")
    print(f"  raw killpg+wait of {LEAVES + 1} children: p50 {percentile(raw, 50) * 1e3:7.1f} ms")
    print(f"  swarm DeleteAgent(hard) → all gone:      p50 {percentile(ours, 50) * 1e3:7.1f} ms  "
          f"max {max(ours) * 1e3:7.1f} ms")
    worst = max(ours)
    print(f"  ratio p50 ours/raw = {percentile(ours, 50) / percentile(raw, 50):.2f}; "
          f"target all gone ≤ 0.2 s: {'met' if worst <= 0.2 else 'MISSED'} (worst {worst:.3f} s)")


if __name__ == "__main__":
    main()
