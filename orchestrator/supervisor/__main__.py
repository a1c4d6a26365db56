"""``python -m orchestrator.supervisor``: run one swarm's supervisor (started by ``swarm up``).

The set-up, the signal idiom and the exit codes are the service host's
(``bus/host``); the supervisor runs its own loop and its own ordered
teardown (it hosts the broker, so it makes its bus client itself).
"""

from __future__ import annotations

import argparse
import sys

from bus.host import Hosted, ServiceHost
from bus.host.args import host_parser, host_spec
from orchestrator.config import load_config
from orchestrator.supervisor.service import Supervisor
from swarm_core.defaults import STOP_GRACE


class SupervisorHosting(Hosted):
    """The Supervisor as the host drives it: ``start``, then its own ``run`` (which tears down)."""

    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup
        self._torn_down = False

    def request_stop(self, reason: str) -> None:
        """Signal-safe: the supervisor records the intent; its loop acts on it."""
        self.sup.request_shutdown(reason)

    def escalate(self) -> None:
        """A second signal: agents are killed, not asked to stop (signal-safe: sets a flag)."""
        self.sup.escalate()

    def start(self) -> None:
        """Zygote, broker, services, the root agent."""
        self.sup.start()

    def serve(self) -> int:
        """The supervisor's loop; its ordered teardown runs when the loop ends, however it ends."""
        self._torn_down = True
        self.sup.run()
        return 0

    def close(self) -> None:
        """Tear down what a failed start left (after ``serve`` the loop has done it)."""
        if not self._torn_down:
            self._torn_down = True
            self.sup.teardown()

    kill = close


def _parse(argv: list[str] | None) -> argparse.Namespace:
    ap = host_parser("python -m orchestrator.supervisor", "Run one swarm's supervisor.")
    ap.add_argument("--config", required=True, help="the swarm YAML")
    ap.add_argument("--goal", default=None, help="replaces the config's goal")
    ap.add_argument("--grace", type=float, default=STOP_GRACE, help="seconds between stop, TERM and KILL")
    ap.add_argument("--resume", action="store_true", help="take over the agents of a crashed supervisor")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the supervisor until the swarm is down; return its exit code."""
    args = _parse(argv)
    # the broker thread shares this process: hand it the GIL quickly when it has work
    sys.setswitchinterval(0.0005)
    host = ServiceHost(host_spec(args, "supervisor"))

    def build(h: ServiceHost) -> SupervisorHosting:
        cfg = load_config(args.config)
        return SupervisorHosting(Supervisor(cfg, args.run_dir, h.log, goal=args.goal,
                                            heartbeat_interval=args.heartbeat, liveness=args.liveness,
                                            grace=args.grace, resume=args.resume))

    return host.run(build)


if __name__ == "__main__":
    sys.exit(main())
