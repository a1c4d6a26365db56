"""The approval round trip: a held command → visible to the operator → approved → the command ran.

A replay swarm whose root writes files one after another, each write held
for approval (``approve: [write_to_file]``). The operator side runs in this
process and does what the CLI does, without its start-up: it reads the
pending requests as ``swarm approvals --json`` does (the registry) and
approves over the bus as ``swarm approve`` does (``Decide``). Per request:

* visible: from the request's creation (``since``) to the operator seeing it
  (this process polls the registry every millisecond);
* approve → ran: from sending ``Decide`` to the written file appearing;
* round trip: from the request's creation to the file (both above, plus the
  operator's reply).

Baseline, same run: a bus round trip operator → supervisor (``SwarmStatus``).
Approve → ran is that round trip plus the supervisor answering the agent's
parked poll, the agent running the command and the file system.

    .venv/bin/python bench/approval.py [--requests 100]
"""

from __future__ import annotations

import argparse
import statistics
import time

from _swarmkit import BenchSwarm, cmd, percentile


def _config() -> dict:
    return {"agents": {"manager": {"role": "m", "commands": ["write_to_file", "task_complete"],
                                   "approve": ["write_to_file"]}}}


def _cassette(n: int) -> dict:
    return {"manager": [cmd("write_to_file", file=f"r{i}.txt", text=f"file {i}") for i in range(n)]
            + [cmd("task_complete", reason="written")]}


def _wait(cond, timeout: float, what: str, step: float = 0.0005):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(step)  # a benchmark's poll interval
    raise SystemExit(f"timed out waiting for {what}")


def _round_trips(sw: BenchSwarm, n: int) -> tuple[list[float], list[float], list[float], list[float]]:
    from orchestrator import runctl
    from swarm_core import messages as m

    client = runctl.bus_client(sw.run_dir)
    visible, ran, total, base = [], [], [], []
    workspace = sw.tmp / "workspace"
    try:
        for i in range(n):
            t0 = time.perf_counter()
            client.request("supervisor", m.SwarmStatus(), 10)
            base.append((time.perf_counter() - t0) * 1e3)
            req = _wait(lambda: runctl.pending_requests(sw.run_dir), 60, f"request {i}", step=0.001)[0]
            seen = time.time()
            t_approve = time.perf_counter()
            client.request("supervisor", m.Decide(req["id"], True), 10)
            _wait(lambda: (workspace / f"r{i}.txt").exists(), 30, f"file {i}")
            done = time.perf_counter()
            visible.append((seen - req["since"]) * 1e3)
            ran.append((done - t_approve) * 1e3)
            total.append((seen - req["since"]) * 1e3 + (done - t_approve) * 1e3)
    finally:
        client.close()
    return visible, ran, total, base


def _row(name: str, xs: list[float]) -> str:
    return f"  {name:<34} p50 {statistics.median(xs):8.2f} ms   p90 {percentile(xs, 90):8.2f} ms"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=100)
    args = ap.parse_args()
    sw = BenchSwarm(_cassette(args.requests), extra=_config())
    try:
        sw.up()
        visible, ran, total, base = _round_trips(sw, args.requests)
        sw.wait_for(lambda a: a.get("manager", {}).get("status") == "done", 60, "the root done")
    finally:
        sw.close()
    print(f"approval round trip: {args.requests} held write_to_file commands, each approved over the bus")
    print(_row("request -> visible in approvals", visible))
    print(_row("approve -> command ran", ran))
    print(_row("round trip (request -> ran)", total))
    print(_row("baseline: bus round trip (status)", base))
    print(f"  approve -> ran / baseline p50: {statistics.median(ran) / statistics.median(base):.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
