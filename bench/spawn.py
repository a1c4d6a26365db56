"""start_agent → agent registered, p50/p95, against a bare `python -c "import zmq, msgpack"` start.

Target: our p50 ≤ 0.75 × the bare interpreter start, measured in the same run.
"""

from __future__ import annotations

import subprocess
import sys
import time

from _swarmkit import WAIT, BenchSwarm, cmd, percentile

N = 40


def bare_starts(n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import zmq, msgpack"], check=True)
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    bare = bare_starts(N)
    cassette = {"manager": [cmd("start_agent", name=f"w{i}", task="idle", role="worker") for i in range(N)]
                + [cmd("task_complete", reason="spawned")]}
    for i in range(N):
        cassette[f"w{i}"] = WAIT
    sw = BenchSwarm(cassette, max_agents=N + 2, max_children=N + 1)
    try:
        sw.up()
        sw.wait_for(lambda a: a.get("manager", {}).get("status") == "done", 120, "all spawns")
        events = sw.log_events("supervisor")
    finally:
        sw.close()
    asked = {e["agent"]: e["t"] for e in events if e.get("event") == "spawn_requested"}
    ready = {e["agent"]: e["t"] for e in events if e.get("event") == "agent_registered"}
    ours = [ready[a] - asked[a] for a in asked if a in ready]
    b50, b95 = percentile(bare, 50), percentile(bare, 95)
    o50, o95 = percentile(ours, 50), percentile(ours, 95)
    print(f"spawn: {len(ours)} start_agent → registered, {N} bare interpreter starts")
    print(f"  bare `python -c 'import zmq, msgpack'`: p50 {b50 * 1e3:7.1f} ms  p95 {b95 * 1e3:7.1f} ms")
    print(f"  start_agent → registered (zygote):    p50 {o50 * 1e3:7.1f} ms  p95 {o95 * 1e3:7.1f} ms")
    ratio = o50 / b50
    print(f"  ratio p50 ours/bare = {ratio:.2f}  (target ≤ 0.75: {'met' if ratio <= 0.75 else 'MISSED'})")


if __name__ == "__main__":
    main()
