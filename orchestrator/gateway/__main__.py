"""The LLM gateway process.

``python -m orchestrator.gateway --run-dir DIR --config CONFIG_YAML [--endpoint BUS_ENDPOINT]``

Connects to the bus as peer ``gateway``, serves ``Complete`` requests with the
provider the config (after environment overrides) selects, and reports usage
to the ``supervisor``. Spend is kept in ``RUN_DIR/ledger.db``; the agent tree
and its budgets are read from ``RUN_DIR/registry.db``. Stops on ``Stop`` from the supervisor or on
SIGTERM/SIGINT (the handler records the intent, the loop acts; a second
signal stops without waiting for running calls). A configuration or provider
set-up error is one line on stderr and exit status 2 (config) or 7 (provider).
The set-up, the loop and the stop are the service host's (``bus/host``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bus.host import ServiceHost
from bus.host.args import host_parser, host_spec
from swarm_core.peers import GATEWAY

if TYPE_CHECKING:
    from orchestrator.gateway.service import GatewayService

TICK = 0.05  # seconds between admission passes (held calls, deadlines)
LEDGER = "ledger.db"  # spend, reservations, rate windows (survives a restart of the gateway)
REGISTRY = "registry.db"  # the supervisor's: the agent tree and its budgets (read-only here)
GRACE = 5.0  # seconds running calls get to finish at a stop


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = host_parser("python -m orchestrator.gateway", __doc__.splitlines()[0], identity=GATEWAY)
    p.add_argument("--config", required=True, help="the swarm YAML")
    p.add_argument("--workers", type=int, default=32, help="worker threads for provider calls")
    return p.parse_args(argv)


def _gateway(host: ServiceHost, args: argparse.Namespace) -> "GatewayService":
    """The gateway service of the config's (effective) provider, its handlers on the host's client."""
    from orchestrator.config import effective_llm, load_config
    from orchestrator.gateway.ledger import Ledger
    from orchestrator.gateway.providers import make_provider
    from orchestrator.gateway.providers.cursors import REPLAY_CURSORS
    from orchestrator.gateway.service import GatewayService
    from orchestrator.gateway.tree import RegistryTree

    cfg = load_config(args.config)
    llm = effective_llm(cfg)
    run_dir = Path(args.run_dir)
    provider = make_provider(llm, host.log)
    persist = getattr(provider, "persist_cursors", None)
    if persist is not None:  # replay: a restarted gateway goes on in every cassette where it was
        persist(run_dir / REPLAY_CURSORS)
    service = GatewayService(host.client, provider, cfg.quotas, llm, log=host.log, workers=args.workers,
                             safety=cfg.safety, tree=RegistryTree(run_dir / REGISTRY),
                             ledger=Ledger(run_dir / LEDGER))
    service.attach()
    return service


def main(argv: list[str] | None = None) -> int:
    """Run the gateway until stopped; return its exit code."""
    args = _parse(argv)
    host = ServiceHost(host_spec(args, "gateway", tick=TICK, drain_seconds=GRACE))
    return host.run(lambda h: _gateway(h, args))


if __name__ == "__main__":
    sys.exit(main())
