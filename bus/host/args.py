"""The command-line options every hosted process takes, and the HostSpec they give.

Every process: ``--run-dir`` (required; logs go under it), ``--heartbeat``
and ``--liveness``. A bus peer also takes ``--endpoint`` (default: the run
dir's bus socket), ``--identity`` (its peer id, defaulting to the
service's name) and ``--credential`` (the file holding its bus credential,
``-`` for one JSON line on stdin: how the supervisor hands it over, so it
is never on disk). A main adds its own options to the parser it gets here.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bus.host.runner import HostSpec
from swarm_core.defaults import HEARTBEAT_INTERVAL, LIVENESS


def host_parser(prog: str, description: str, *, identity: str = "") -> argparse.ArgumentParser:
    """A parser with the shared options; with ``identity`` the process is a bus peer of that default id."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--run-dir", required=True, type=lambda s: Path(s).resolve(),
                   help="the swarm's run directory (logs go under it)")
    p.add_argument("--heartbeat", type=float, default=HEARTBEAT_INTERVAL, help="heartbeat interval, seconds")
    p.add_argument("--liveness", type=int, default=LIVENESS, help="missed heartbeats before a peer is dead")
    if identity:
        p.add_argument("--endpoint", default="",
                       help="the bus broker's endpoint (default: the run dir's bus socket)")
        p.add_argument("--identity", default=identity, help=f"peer id on the bus (default: {identity})")
        p.add_argument("--credential", required=True,
                       help="file with this process's bus credential ('-': one JSON line on stdin)")
    return p


def host_spec(args: argparse.Namespace, role: str, **extra: Any) -> HostSpec:
    """The HostSpec of parsed shared options (``extra``: tick, drain_seconds, name, ...)."""
    source = getattr(args, "credential", None)
    return HostSpec(role=role, run_dir=args.run_dir, identity=getattr(args, "identity", ""),
                    endpoint=getattr(args, "endpoint", ""), heartbeat_interval=args.heartbeat,
                    liveness=args.liveness, credential=source or None, **extra)
