"""200 idle agents alive at once: USS per agent and broker round-trip p99 under that load.

Targets: USS ≤ 20 MiB per agent; broker p99 round trip ≤ 5 ms. The baseline
is the same round trip after every agent was killed, measured in the same run.
"""

from __future__ import annotations

import time

import psutil
from _swarmkit import WAIT, BenchSwarm, cmd, percentile

from orchestrator.runctl import gone

HUBS = 10
LEAVES_PER_HUB = 19  # 1 root + 10 hubs + 190 leaves = 201 agents
PINGS = 2000


def ping_rtts(run_dir, n: int) -> list[float]:
    from bus import messages as bm
    from orchestrator import runctl

    c = runctl.bus_client(run_dir)  # an operator session: the operator's credential, a cli- id
    try:
        for _ in range(50):
            c.request("broker", bm.Ping(b"x" * 100), 5.0)
        out = []
        for _ in range(n):
            t = time.perf_counter()
            c.request("broker", bm.Ping(b"x" * 100), 5.0)
            out.append(time.perf_counter() - t)
        return out
    finally:
        c.close()


def main() -> None:
    cassette = {"manager": {"responses": [cmd("start_agent", name=f"hub{h}", task="hub", role="worker")
                                          for h in range(HUBS)] + [cmd("do_nothing")], "repeat": True}}
    for h in range(HUBS):
        cassette[f"hub{h}"] = {"responses": [cmd("start_agent", name=f"h{h}l{i}", task="idle", role="worker")
                                             for i in range(LEAVES_PER_HUB)] + [cmd("do_nothing")],
                               "repeat": True}
        for i in range(LEAVES_PER_HUB):
            cassette[f"h{h}l{i}"] = WAIT
    total = 1 + HUBS + HUBS * LEAVES_PER_HUB
    sw = BenchSwarm(cassette, max_agents=total + 5, max_children=LEAVES_PER_HUB + 1)
    try:
        sw.up()
        agents = sw.wait_for(lambda a: sum(1 for x in a.values() if x["status"] in ("running", "waiting"))
                             >= total, 600, f"{total} agents alive")
        time.sleep(2.0)  # let start-up settle before measuring steady-state memory and latency
        uss = []
        for a in agents.values():
            try:
                uss.append(psutil.Process(a["pid"]).memory_full_info().uss)
            except psutil.NoSuchProcess:
                pass
        loaded = ping_rtts(sw.run_dir, PINGS)
        from orchestrator import runctl
        from swarm_core import messages as m

        runctl.ask(sw.run_dir, m.KillAll("bench"))
        pids = [a["pid"] for a in agents.values()]
        deadline = time.monotonic() + 30
        while not all(gone(p) for p in pids):
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        base = ping_rtts(sw.run_dir, PINGS)  # the same broker with no agent left: the quiet baseline
    finally:
        sw.close()
    mib = [u / 2**20 for u in uss]
    print(f"scale: {len(mib)} idle agents alive")
    print(f"  USS per agent: p50 {percentile(mib, 50):.1f} MiB  max {max(mib):.1f} MiB  "
          f"(target ≤ 20 MiB: {'met' if percentile(mib, 50) <= 20 else 'MISSED'})")
    print(f"  broker round trip, quiet:    p50 {percentile(base, 50) * 1e6:7.0f} µs  "
          f"p99 {percentile(base, 99) * 1e6:7.0f} µs")
    p99 = percentile(loaded, 99)
    print(f"  broker round trip, {len(mib)} agents: p50 {percentile(loaded, 50) * 1e6:7.0f} µs  "
          f"p99 {p99 * 1e6:7.0f} µs  (target p99 ≤ 5 ms: {'met' if p99 <= 0.005 else 'MISSED'}; "
          f"ratio p99 loaded/quiet {p99 / percentile(base, 99):.2f})")


if __name__ == "__main__":
    main()
