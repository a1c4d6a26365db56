"""The LLM gateway process.

``python -m orchestrator.gateway --run-dir DIR --config CONFIG_YAML --endpoint BUS_ENDPOINT``

Connects to the bus as peer ``gateway``, serves ``Complete`` requests with the
provider the config (after environment overrides) selects, and reports usage
to the ``supervisor``. Stops on ``Stop`` from the supervisor or on
SIGTERM/SIGINT (the handler records the intent, the loop acts; a second
signal stops without waiting for running calls). A configuration or provider
set-up error is one line on stderr and exit status 2 (config) or 7 (provider).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Any

TICK = 0.05  # seconds between admission passes (held calls, deadlines)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m orchestrator.gateway", description=__doc__.splitlines()[0])
    p.add_argument("--run-dir", required=True, help="the swarm's run directory (logs go under it)")
    p.add_argument("--config", required=True, help="the swarm YAML")
    p.add_argument("--endpoint", required=True, help="the bus broker's endpoint")
    p.add_argument("--identity", default="gateway", help="peer id on the bus (default: gateway)")
    p.add_argument("--workers", type=int, default=32, help="worker threads for provider calls")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    from bus.client import BusClient
    from orchestrator.config import effective_llm, load_config
    from orchestrator.gateway.providers import make_provider
    from orchestrator.gateway.service import GatewayService
    from swarm_core import log as logging
    from swarm_core.errors import SwarmError

    log = logging.configure(role="gateway", run_dir=args.run_dir)
    try:
        cfg = load_config(args.config)
        llm = effective_llm(cfg)
        provider = make_provider(llm, log)
    except SwarmError as err:
        log.error("gateway_setup_failed", code=err.code, error=err.message)
        sys.stderr.write(f"gateway: {err.message}\n")
        return err.exit_code

    signals: list[int] = []

    def on_signal(signum: int, frame: Any) -> None:
        signals.append(signum)  # the loop acts on it

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    from bus.auth import client_for

    client = BusClient(args.endpoint, args.identity, log=log, curve=client_for(args.endpoint, args.run_dir))
    service = GatewayService(client, provider, cfg.quotas, llm, log=log, workers=args.workers,
                             safety=cfg.safety)
    service.attach()
    client.connect()
    log.info("gateway_started", provider=llm.provider, model=llm.model, pid=os.getpid())
    try:
        while not service.stop_reason and not signals:
            client.poll(TICK)
            service.pump()
        if signals and not service.stop_reason:
            service.stop_reason = signal.Signals(signals[0]).name.lower()
        service.stop(grace=5.0, hurry=lambda: len(signals) > 1)
    finally:
        client.close()
    log.info("gateway_stopped", reason=service.stop_reason)
    if service.busy:
        # a provider call cannot be interrupted; do not wait for it to exit
        sys.stderr.flush()
        os._exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
