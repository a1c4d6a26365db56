"""Chaos: a swarm of about 30 agents on replay cassettes works while a seeded injector SIGKILLs agents,
the gateway, the memory service and the supervisor (then ``swarm up --resume``) and SIGSTOPs agents for
a while; afterwards every invariant is checked from outside (``chaoskit/invariants.py``).

    python bench/chaos.py --seed N --duration SECONDS      (default: 180 s)

Exit 0 only when every invariant held; the tables and the seed are printed last. The same seed (and
duration) gives the same fault schedule: faults are pinned to the run's progress, not to the clock.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chaoskit import invariants as inv  # noqa: E402
from chaoskit.injector import Injector  # noqa: E402
from chaoskit.report import render  # noqa: E402
from chaoskit.schedule import Fault, describe, schedule  # noqa: E402
from chaoskit.swarm import ChaosSwarm, wait  # noqa: E402
from chaoskit.workload import Workload, config  # noqa: E402

POLL = 0.2  # seconds between two looks at the run's progress
SAY_EVERY = 15.0  # seconds between two progress lines


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, required=True, help="picks the fault schedule (same seed, same faults)")
    p.add_argument("--duration", type=float, default=180.0, help="seconds the workload is sized for")
    p.add_argument("--workdir", type=Path, default=None,
                   help="where the run directory is made (default: the system's temporary directory)")
    return p.parse_args(argv)


def start(swarm: ChaosSwarm) -> inv.Verdict | None:
    """Bring the swarm up; a Verdict saying why when it does not come up."""
    p = swarm.up()
    if p.returncode != 0:
        return inv.Verdict("the swarm starts", False, p.stderr.strip()[-300:])
    if not wait(lambda: any(a["status"] in ("running", "waiting") for a in swarm.agents()), 120):
        return inv.Verdict("the swarm starts", False, "the root never ran")
    return None


def root_ended(swarm: ChaosSwarm) -> bool:
    return any(a["parent"] is None and a["status"] in inv.TERMINAL for a in swarm.agents())


def inject(swarm: ChaosSwarm, faults: list[Fault], injector: Injector, until: float) -> None:
    """Fire each fault when the run's progress reaches it (until the faults run out or the root ends)."""
    pending, next_say = list(faults), 0.0
    while pending and time.monotonic() < until and not root_ended(swarm):
        progress = swarm.progress()
        while pending and pending[0].at <= progress:
            injector.fire(pending.pop(0), progress)
        injector.resume_due(progress)
        if time.monotonic() >= next_say:
            next_say = time.monotonic() + SAY_EVERY
            live = sum(1 for a in swarm.agents() if a["status"] not in inv.TERMINAL)
            print(f"  progress {progress:5d}: {live} agents live, {len(pending)} faults to go", flush=True)
        time.sleep(POLL)
    injector.resume_all()
    for fault in pending:
        injector.skip(fault, swarm.progress(), "the run ended first")


def judge(swarm: ChaosSwarm, workload: Workload, injector: Injector, wall_limit: float) -> list[inv.Verdict]:
    """Every invariant but the last one (which needs the swarm down)."""
    after_faults = inv.agreement(swarm)
    root = next(a for a in swarm.agents() if a["parent"] is None)
    wait(lambda: root_ended(swarm), max(1.0, root["created_at"] + wall_limit + inv.ROOT_GRACE - time.time()))
    finished = inv.root_finished(swarm, wall_limit)
    at_end = inv.agreement(swarm)
    agreed = inv.Verdict(after_faults.name, bool(after_faults.held and at_end.held),
                         f"after the faults: {after_faults.detail}; at the end: {at_end.detail}")
    wait(lambda: swarm.service_pid("memory"), 60)  # it may have just been restarted
    return [agreed, inv.memory_found(swarm, workload), inv.messages_once(swarm, injector.sent),
            inv.depth_limit(swarm), inv.count_limit(swarm), inv.spend_within_budgets(swarm), finished]


def run(args: argparse.Namespace, swarm: ChaosSwarm, injector: Injector) -> list[inv.Verdict]:
    """Start, inject, judge; always bring the swarm down and check that nothing is left."""
    workload = swarm.workload
    wall_limit = float(config(workload)["limits"]["max_wall_seconds"])
    faults = schedule(args.seed, args.duration, workload.expected_progress())
    print(f"chaos: seed {args.seed}, {len(workload.cassette)} agents in the cassette, run dir {swarm.run_dir}")
    print(f"  scheduled: {describe(faults)} (progress {faults[0].at}..{faults[-1].at} "
          f"of about {workload.expected_progress()})", flush=True)
    verdicts: list[inv.Verdict] = []
    try:
        failed = start(swarm)
        if failed is not None:
            return [failed]
        inject(swarm, faults, injector, time.monotonic() + wall_limit)
        verdicts = judge(swarm, workload, injector, wall_limit)
    finally:
        injector.resume_all()
        swarm.cli("down", timeout=180)
        verdicts.append(inv.nothing_left(swarm))
    return verdicts


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    swarm = ChaosSwarm(Workload(args.duration).build(), args.workdir)
    injector = Injector(swarm)
    t0 = time.monotonic()
    verdicts = run(args, swarm, injector)
    print(render(injector, verdicts, args.seed, args.duration, time.monotonic() - t0), flush=True)
    return 0 if verdicts and all(v.held is not False for v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
