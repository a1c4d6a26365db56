"""``python -m orchestrator.supervisor``: run one swarm's supervisor (started by ``swarm up``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from orchestrator.config import load_config
from orchestrator.supervisor.service import Supervisor
from swarm_core import log as swarm_log
from swarm_core.defaults import HEARTBEAT_INTERVAL, LIVENESS
from swarm_core.errors import SwarmError


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m orchestrator.supervisor")
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--goal", default=None)
    ap.add_argument("--heartbeat", type=float, default=HEARTBEAT_INTERVAL)
    ap.add_argument("--liveness", type=int, default=LIVENESS)
    ap.add_argument("--grace", type=float, default=2.0)
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args(argv)
    # the broker thread shares this process: hand it the GIL quickly when it has work
    sys.setswitchinterval(0.0005)
    run_dir = Path(args.run_dir).resolve()
    log = swarm_log.configure(role="supervisor", run_dir=run_dir, name="supervisor")
    try:
        cfg = load_config(args.config)
        sup = Supervisor(cfg, run_dir, log, goal=args.goal, heartbeat_interval=args.heartbeat,
                         liveness=args.liveness, grace=args.grace, resume=args.resume)
        sup.install_signal_handlers()
    except SwarmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    try:
        sup.start()
    except SwarmError as exc:
        log.error("supervisor_start_failed", error=str(exc))
        print(f"error: {exc}", file=sys.stderr)
        sup.request_shutdown("start_failed")
        sup.teardown()
        return exc.exit_code
    except BaseException:
        log.exception("supervisor_start_failed")
        sup.request_shutdown("start_failed")
        sup.teardown()
        raise
    try:
        sup.run()
    except BaseException:  # process boundary: log with traceback, then exit non-zero
        log.exception("supervisor_failed")
        return 70
    return 0


if __name__ == "__main__":
    sys.exit(main())
