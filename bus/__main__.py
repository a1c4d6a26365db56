"""``python -m bus``: run a broker in the foreground.

For benchmarks and manual tests; in a swarm the supervisor hosts the broker
in a thread. SIGTERM/SIGINT stop it cleanly, with the one signal idiom of
``bus/host``: the handler records the intent, the loop acts on it.
"""

from __future__ import annotations

import argparse

from bus.broker import Broker
from bus.host.intent import StopIntent
from bus.host.runner import SIGNALS
from swarm_core.defaults import HEARTBEAT_INTERVAL, LIVENESS


def main(argv: list[str] | None = None) -> int:
    """Run a broker in the foreground until SIGTERM/SIGINT (benchmarks, manual tests)."""
    ap = argparse.ArgumentParser(prog="python -m bus", description=main.__doc__)
    ap.add_argument("--endpoint", required=True, help="ROUTER endpoint (ipc://... or tcp://...)")
    ap.add_argument("--pub", required=True, help="PUB endpoint for events")
    ap.add_argument("--heartbeat", type=float, default=HEARTBEAT_INTERVAL, help="heartbeat interval, seconds")
    ap.add_argument("--liveness", type=int, default=LIVENESS, help="missed heartbeats before a peer is dead")
    ap.add_argument("--peer-queue", type=int, default=1000, help="per-peer send queue (messages)")
    ap.add_argument("--run-dir", help="with a tcp endpoint: the run dir holding the CurveZMQ keys")
    args = ap.parse_args(argv)
    curve = None
    if args.endpoint.startswith("tcp://"):
        if not args.run_dir:
            ap.error("a tcp:// endpoint needs --run-dir (CurveZMQ keys)")
        from bus.auth import CurveServer

        curve = CurveServer.from_run_dir(args.run_dir)
    broker = Broker(args.endpoint, args.pub, heartbeat_interval=args.heartbeat,
                    liveness=args.liveness, peer_queue=args.peer_queue, curve=curve)
    broker.bind()
    intent = StopIntent()
    restore = intent.install(SIGNALS)
    try:
        broker.run(should_stop=lambda: intent.signals > 0)
    finally:
        restore()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
