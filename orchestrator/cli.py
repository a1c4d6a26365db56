"""``swarm``: start a swarm from YAML, inspect it, freeze or kill its agents.

Every listing takes ``--json``. ``--run-dir`` (or ``SWARM_RUN_DIR``) selects
the swarm; the default is ``./.swarm``. Errors are one line on stderr with a
non-zero exit code (2 for a bad config); never a traceback.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from orchestrator import cli_operator, runctl
from orchestrator.cli_memory import memory
from swarm_core.defaults import HEARTBEAT_INTERVAL, LIVENESS
from swarm_core.errors import ConfigError, NotRunning, SwarmError, UsageError

DEFAULT_RUN_DIR = ".swarm"


def _run_dir(ctx: click.Context) -> Path:
    return ctx.obj["run_dir"]


def _emit_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=None, default=str))


def _console():
    from rich.console import Console

    # piped output is read by programs and people with wide windows: don't fold at 80 columns
    return Console() if sys.stdout.isatty() else Console(width=200)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--run-dir", envvar="SWARM_RUN_DIR", default=DEFAULT_RUN_DIR, show_default=True,
              type=click.Path(file_okay=False), help="The swarm's run directory.")
@click.pass_context
def cli(ctx: click.Context, run_dir: str) -> None:
    """Run a swarm of LLM agents as OS processes, and keep a hard hand on it."""
    ctx.ensure_object(dict)
    ctx.obj["run_dir"] = Path(run_dir).resolve()


# ----------------------------------------------------------------- up / down


@cli.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--goal", help="Replace the goal written in the config.")
@click.option("--detach", is_flag=True, help="Start in the background and return at once.")
@click.option("--heartbeat", type=float, default=HEARTBEAT_INTERVAL, hidden=True)
@click.option("--liveness", type=int, default=LIVENESS, hidden=True)
@click.option("--grace", type=float, default=2.0, hidden=True)
@click.option("--resume", is_flag=True, help="Take over the agents of a crashed supervisor.")
@click.option("--start-timeout", type=float, default=900.0, hidden=True)
@click.pass_context
def up(ctx: click.Context, config: str, goal: str | None, detach: bool, heartbeat: float,
       liveness: int, grace: float, resume: bool, start_timeout: float) -> None:
    """Start the swarm defined in CONFIG; in the foreground, show progress until the root finishes."""
    from orchestrator.config import effective_llm, load_config
    from orchestrator.gateway.model_files import GEMMA_NOTICE, uses_packaged_gemma
    from orchestrator.preflight import preflight

    cfg = load_config(config)
    preflight(cfg)
    run_dir = _run_dir(ctx)
    _check_sandbox(cfg, config, run_dir)
    pid = runctl.supervisor_pid(run_dir)
    if pid is not None:
        raise UsageError(f"a swarm is already running in {run_dir} (supervisor pid {pid}); "
                         "stop it with: swarm down")
    run_dir.mkdir(parents=True, exist_ok=True)
    extra = ["--heartbeat", str(heartbeat), "--liveness", str(liveness), "--grace", str(grace)]
    if resume:
        if not (run_dir / runctl.REGISTRY).exists():
            raise UsageError(f"nothing to resume in {run_dir}: no registry")
        runctl.release_for_resume(run_dir)
        extra.append("--resume")
    else:
        runctl.kill_leftovers(run_dir)
        runctl.clean_previous_run(run_dir)
    if uses_packaged_gemma(effective_llm(cfg)):
        click.echo(GEMMA_NOTICE, err=True)
    proc = runctl.start_supervisor(run_dir, str(Path(config).resolve()), goal, extra)
    if not detach:
        click.echo(f"starting swarm {cfg.name} in {run_dir} ...", err=True)
    runctl.wait_running(run_dir, proc, start_timeout)
    if detach:
        click.echo(f"swarm {cfg.name} is up (supervisor pid {proc.pid}, run dir {run_dir})")
        return
    from orchestrator.progress import follow

    started = time.time() - 1.0
    try:
        status, result = follow(run_dir, cfg.root, _console())
    except KeyboardInterrupt:
        click.echo("\ninterrupted: stopping the swarm ...", err=True)
        _down(run_dir)
        ctx.exit(130)
        return
    _down(run_dir)
    workspace = cfg.workspace
    if status == "done":
        click.echo(f"\n{cfg.root} completed: {result}")
        click.echo(f"workspace: {workspace}")
        for line in _recent_files(Path(workspace), since=started):
            click.echo(f"  {line}")
        return
    click.echo(f"\n{cfg.root} ended {status}: {result or ''}".rstrip(), err=True)
    ctx.exit(1)


def _check_sandbox(cfg: Any, config: str, run_dir: Path) -> None:
    """Refuse a ``sandbox: kernel`` swarm this kernel or layout cannot confine; warn when there is none."""
    if cfg.safety.sandbox == "none":
        click.echo("warning: safety.sandbox is none: agents and the code they run are not confined by the "
                   "kernel" + ("; with tools.static_scan: false nothing at all limits executed code"
                               if not cfg.tools.static_scan else ""), err=True)
        return
    from agents.confine.agent import layout_problem
    from agents.confine.probe import probe
    from bus.sockets import ipc_endpoint, ipc_path

    socket = ipc_path(ipc_endpoint(run_dir, "bus", create=False)) if cfg.bus.transport == "ipc" else None
    problem = layout_problem(str(run_dir), cfg.workspace, str(socket) if socket else None)
    if problem:
        raise ConfigError(f"{config}: workspace: {problem}", file=config, field="workspace")
    result = probe()
    if not result.ok:
        raise ConfigError(f"{config}: safety.sandbox: kernel: {result.reason} "
                          "(or set safety.sandbox: none to run without it)",
                          file=config, field="safety.sandbox")


def _recent_files(workspace: Path, since: float, limit: int = 10) -> list[str]:
    """Files of the workspace written during this run, newest first."""
    try:
        files = [p for p in workspace.rglob("*") if p.is_file() and p.stat().st_mtime >= since]
    except OSError:
        return []
    files.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    return [f"{p.relative_to(workspace)} ({p.stat().st_size} bytes)" for p in files[:limit]]


def _down(run_dir: Path, timeout: float = 60.0) -> str:
    pid = runctl.supervisor_pid(run_dir)
    if pid is None:
        n = runctl.kill_leftovers(run_dir)
        return f"no swarm running in {run_dir}" + (f"; killed {n} leftover agent(s)" if n else "")
    runctl.stop_supervisor(run_dir, pid, timeout)
    runctl.kill_leftovers(run_dir)
    return f"swarm in {run_dir} is down"


@cli.command()
@click.pass_context
def down(ctx: click.Context) -> None:
    """Stop everything: every agent, the services, the supervisor (ordered)."""
    click.echo(_down(_run_dir(ctx)))


@cli.command()
@click.argument("config", type=click.Path(dir_okay=False))
def validate(config: str) -> None:
    """Check a swarm YAML file; print what is wrong (file, field, line) or OK."""
    from orchestrator.config import load_config
    from orchestrator.preflight import preflight

    cfg = load_config(config)
    preflight(cfg)
    click.echo(f"{config}: OK (swarm {cfg.name}, root {cfg.root}, {len(cfg.agents)} roles, "
               f"provider {cfg.llm.provider})")


# ----------------------------------------------------------------- listings


def _snapshot(run_dir: Path) -> tuple[list[Any], str, str]:
    """Every agent record, the swarm's name and the table header (its processes), read from the registry."""
    from orchestrator.swarmhealth import header

    reg = runctl.open_registry(run_dir)
    try:
        name = reg.meta("name", "swarm")
        title = header(name, reg.meta, runctl.supervisor_pid(run_dir), lambda pid: not runctl.gone(pid))
        return reg.all(), name, title
    finally:
        reg.close()


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.pass_context
def ps(ctx: click.Context, as_json: bool) -> None:
    """List every agent of the swarm with its status and counters."""
    from orchestrator.supervisor.registry import ps_views

    recs, _, title = _snapshot(_run_dir(ctx))
    if as_json:
        _emit_json(ps_views(recs))
        return
    from orchestrator.views import ps_table

    _console().print(ps_table(recs, title=title))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the tree as nested JSON.")
@click.pass_context
def tree(ctx: click.Context, as_json: bool) -> None:
    """Show the agent tree (who started whom)."""
    from orchestrator.views import tree_json, tree_view

    recs, name, _ = _snapshot(_run_dir(ctx))
    if as_json:
        _emit_json(tree_json(recs))
    else:
        _console().print(tree_view(recs, f"swarm {name}"))


@cli.command()
@click.argument("agent_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def inspect(ctx: click.Context, agent_id: str, as_json: bool) -> None:
    """Everything known about one agent: counters, cost, task, result, recent events."""
    info = runctl.inspect_agent(_run_dir(ctx), agent_id)
    if as_json:
        _emit_json(info)
        return
    for key in ("id", "name", "role", "parent", "depth", "pid", "status", "reason", "steps", "tokens",
                "requests", "cost_usd", "subtree_tokens", "subtree_cost_usd", "budget_tokens", "budget_usd",
                "restarts", "task", "result", "children"):
        click.echo(f"{key:>16}: {info.get(key)}")
    for ev in info["events"]:
        click.echo(f"    event: {time.strftime('%H:%M:%S', time.localtime(ev['ts']))} {ev['event']} "
                   f"{ev['detail']}".rstrip())


@cli.command()
@click.option("--interval", type=float, default=1.0, show_default=True)
@click.option("--once", is_flag=True, help="Print one snapshot and exit.")
@click.pass_context
def top(ctx: click.Context, interval: float, once: bool) -> None:
    """A live view of the swarm's agents (Ctrl-C to leave)."""
    from rich.live import Live

    from orchestrator.views import ps_table

    run_dir = _run_dir(ctx)

    def snapshot():
        recs, _, title = _snapshot(run_dir)
        return ps_table(recs, title=title)

    if once:
        _console().print(snapshot())
        return
    try:
        with Live(snapshot(), console=_console(), refresh_per_second=4) as live:
            while True:
                time.sleep(interval)
                live.update(snapshot())
    except KeyboardInterrupt:
        pass


# ----------------------------------------------------------------- control


@cli.command()
@click.argument("agent_id")
@click.argument("message")
@click.pass_context
def send(ctx: click.Context, agent_id: str, message: str) -> None:
    """Put MESSAGE into agent ID's inbox (it sees it at its next step)."""
    message_id = runctl.send_message(_run_dir(ctx), agent_id, message)
    click.echo(f"sent to {agent_id} (message {message_id})")


@cli.command()
@click.argument("agent_id", required=False)
@click.option("--all", "kill_all", is_flag=True, help="Kill every agent.")
@click.option("--no-wait", is_flag=True, help="Return without waiting for the processes to go.")
@click.pass_context
def kill(ctx: click.Context, agent_id: str | None, kill_all: bool, no_wait: bool) -> None:
    """Stop agent ID and its whole subtree (or every agent with --all)."""
    run_dir = _run_dir(ctx)
    if bool(agent_id) == kill_all:
        raise UsageError("give an agent ID or --all (not both)")
    before = runctl.live_pids(run_dir, None if kill_all else _subtree_ids(run_dir, agent_id or ""))
    n = runctl.kill_all(run_dir) if kill_all else runctl.kill_agent(run_dir, agent_id or "")
    if not no_wait:
        left = runctl.wait_gone(before, 15.0)
        if left:
            raise SwarmError(f"processes still alive after 15s: {left}")
    click.echo(f"stopped {n} agent(s)")


def _subtree_ids(run_dir: Path, agent_id: str) -> list[str]:
    reg = runctl.open_registry(run_dir)
    try:
        return [r.id for r in reg.subtree(agent_id)]
    finally:
        reg.close()


@cli.command()
@click.argument("agent_id", required=False)
@click.pass_context
def freeze(ctx: click.Context, agent_id: str | None) -> None:
    """Hold the model calls of agent ID (or of every agent)."""
    n = runctl.freeze_agent(_run_dir(ctx), agent_id or "", True)
    click.echo(f"frozen {n} agent(s)")


@cli.command()
@click.argument("agent_id", required=False)
@click.pass_context
def thaw(ctx: click.Context, agent_id: str | None) -> None:
    """Release the held calls of agent ID (or of every agent)."""
    n = runctl.freeze_agent(_run_dir(ctx), agent_id or "", False)
    click.echo(f"thawed {n} agent(s)")


@cli.command()
@click.argument("agent_id", required=False)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
@click.option("-n", "--lines", type=int, default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON lines.")
@click.pass_context
def logs(ctx: click.Context, agent_id: str | None, follow: bool, lines: int, as_json: bool) -> None:
    """Show the logs of agent ID, or of the whole swarm merged by time."""
    from orchestrator.logview import show_logs

    show_logs(_run_dir(ctx), agent_id, follow=follow, lines=lines, as_json=as_json)


cli.add_command(memory)
for _command in cli_operator.COMMANDS:
    cli.add_command(_command)


def _attach_operator_views() -> None:
    from orchestrator.cli_dashboard import dashboard
    from orchestrator.cli_trace import trace

    cli.add_command(dashboard)
    cli.add_command(trace)


_attach_operator_views()


def main(argv: list[str] | None = None) -> None:
    """Console entry: run the CLI; a SwarmError becomes one line on stderr and its exit code."""
    try:
        rv = cli.main(args=argv, prog_name="swarm", standalone_mode=False)
    except SwarmError as exc:
        click.echo(f"swarm: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # process boundary: one line for the user, the traceback to a file
        import tempfile
        import traceback

        with tempfile.NamedTemporaryFile("w", prefix="swarm-crash-", suffix=".txt", delete=False) as fh:
            traceback.print_exc(file=fh)
        click.echo(f"swarm: internal error: {type(exc).__name__}: {exc} (traceback in {fh.name})", err=True)
        sys.exit(70)
    sys.exit(rv if isinstance(rv, int) else 0)


__all__ = ["cli", "main", "ConfigError", "NotRunning"]

if __name__ == "__main__":
    main()
