"""``python -m bus``: run a broker in the foreground.

For benchmarks and manual tests; in a swarm the supervisor hosts the broker
in a thread. Like the supervisor's, this broker admits only peers with a
credential of its keyring: ``--keyring STORE`` is a keyring store (the
verifiers a ``bus.keyring.Keyring(store=...)`` wrote while issuing the
peers' credentials); ``--issue NAME=KIND`` (repeatable) instead issues one
per peer and writes it to ``DIR/NAME.cred`` (mode 0600) under
``--credentials-dir``. No gate runs here (no authorization table: that is
the supervisor's).
SIGTERM/SIGINT stop it cleanly, with the one signal idiom of ``bus/host``:
the handler records the intent, the loop acts on it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bus.broker import Broker
from bus.credentials import MECHANISMS, write_file
from bus.host.intent import StopIntent
from bus.host.runner import SIGNALS
from bus.keyring import Keyring, default_mechanism, stored_peers
from bus.sockets import secure_dir
from swarm_core.defaults import HEARTBEAT_INTERVAL, LIVENESS
from swarm_core.peers import PeerKind


def _issue(arg: str) -> tuple[str, PeerKind]:
    name, _, kind = arg.partition("=")
    try:
        return name, PeerKind(kind)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NAME=KIND (KIND: {', '.join(PeerKind)}), got {arg!r}")


def main(argv: list[str] | None = None) -> int:
    """Run a broker in the foreground until SIGTERM/SIGINT (benchmarks, manual tests)."""
    ap = argparse.ArgumentParser(prog="python -m bus", description=main.__doc__)
    ap.add_argument("--endpoint", required=True, help="ROUTER endpoint (ipc://... or tcp://...)")
    ap.add_argument("--pub", required=True, help="PUB endpoint for events")
    ap.add_argument("--heartbeat", type=float, default=HEARTBEAT_INTERVAL, help="heartbeat interval, seconds")
    ap.add_argument("--liveness", type=int, default=LIVENESS, help="missed heartbeats before a peer is dead")
    ap.add_argument("--peer-queue", type=int, default=1000, help="per-peer send queue (messages)")
    ap.add_argument("--mechanism", choices=MECHANISMS, help="default: curve on tcp://, plain on ipc://")
    ap.add_argument("--issue", type=_issue, action="append", default=[], metavar="NAME=KIND",
                    help="issue a credential for peer NAME of KIND (repeatable)")
    ap.add_argument("--credentials-dir", type=Path, help="where the issued credentials are written")
    ap.add_argument("--keyring", type=Path, help="a keyring store: admit the credentials issued into it")
    args = ap.parse_args(argv)
    if args.issue and args.credentials_dir is None:
        ap.error("--issue needs --credentials-dir")
    if args.keyring is not None:
        keys = Keyring.load(args.keyring, keep=stored_peers(args.keyring))
    else:
        keys = Keyring(args.mechanism or default_mechanism(args.endpoint))
    for name, kind in args.issue:
        write_file(secure_dir(args.credentials_dir) / f"{name}.cred", keys.issue(name, kind))
    broker = Broker(args.endpoint, args.pub, heartbeat_interval=args.heartbeat,
                    liveness=args.liveness, peer_queue=args.peer_queue, keyring=keys)
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
