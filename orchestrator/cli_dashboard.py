"""``swarm dashboard``: serve the live web page and its JSON API for a run directory.

Prints the page's address once, with the token (``/?token=TOKEN``); the
token stays in ``RUN_DIR/dashboard.token`` (0600). Runs until Ctrl-C or
SIGTERM; the swarm may come and go meanwhile.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import click

from swarm_core.errors import UsageError


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind (the token guards every request; keep it local unless you must).")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port to bind (0: any free port).")
@click.option("--open", "open_browser", is_flag=True, help="Open the page in a web browser.")
@click.pass_context
def dashboard(ctx: click.Context, host: str, port: int, open_browser: bool) -> None:
    """Serve a live web page of the swarm (tree, steps, costs, traces, kill switches); print its URL."""
    from orchestrator.dashboard.server import DashboardServer
    from swarm_core import log as swarm_log

    run_dir: Path = ctx.find_root().obj["run_dir"]
    run_dir.mkdir(parents=True, exist_ok=True)
    log = swarm_log.configure(role="dashboard", run_dir=run_dir, name="dashboard")
    try:
        server = DashboardServer(run_dir, host, port, log)
    except OSError as exc:
        raise UsageError(f"cannot serve the dashboard on {host}:{port}: {exc.strerror or exc}") from None
    url = f"{server.url}?token={server.token}"
    click.echo(f"dashboard of {run_dir}: {url}")
    log.info("dashboard_started", url=server.url)

    def on_term(signum: int, frame: object) -> None:
        # serve_forever runs on this thread: shutdown() must come from another one
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    server.start()
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        log.info("dashboard_stopped")
