"""``execute_python_file``: scan a workspace file, then run it in the sandbox.

The file is resolved through ``ctx.workspace``; :func:`agents.sandbox.run_python_source`
refuses it with the reasons if the static scan finds anything (nothing runs),
otherwise runs it with the workspace folder as cwd and the limits from
``ctx.settings`` (``exec_cpu_seconds`` 10, ``exec_memory_mb`` 512,
``exec_wall_seconds`` 30, ``exec_output_limit`` 8000 bytes), calling
``ctx.ports.keep_alive`` while it waits so the agent keeps heartbeating.

The sandbox comes from ``ctx.settings`` too: ``sandbox`` (``kernel``, the
default, or ``none``), ``static_scan`` (default true; false skips the scan
and the audit hook: the kernel sandbox alone holds), ``exec_root`` (the
root the agent's zygote prepared) and ``exec_scratch`` (the agent's tmpfs of
``limits.workspace_mb``: the code works on a copy of the workspace there,
staged in before and copied back after the run, see
:mod:`agents.stage`). Every refusal the agent sees is logged
with the agent and the rule: ``code_refused`` (the static scan) and
``sandbox_refused`` (the rule that refused what the program died of).
"""

from __future__ import annotations

from typing import Any

from agents.commands.binding import implements
from agents.commands.context import CommandContext, CommandError
from agents.sandbox import KERNEL, MAX_SOURCE_BYTES, NONE, RunResult, SandboxRefused, run_python_source
from agents.stage import stage_in, stage_out

DEFAULTS = {"exec_cpu_seconds": 10, "exec_memory_mb": 512, "exec_wall_seconds": 30, "exec_output_limit": 8000}


def _setting(ctx: CommandContext, key: str) -> float:
    value = ctx.settings.get(key, DEFAULTS[key])
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return DEFAULTS[key]
    return value


def _sandbox(ctx: CommandContext) -> dict[str, Any]:
    """The sandbox settings: unknown values fall back to the safe side (kernel sandbox, scan on)."""
    root = ctx.settings.get("exec_root")
    return {"sandbox": NONE if ctx.settings.get("sandbox") == NONE else KERNEL,
            "static_scan": ctx.settings.get("static_scan") is not False,
            "exec_root": root if isinstance(root, str) else None}


def _scratch(ctx: CommandContext) -> str | None:
    """The agent's scratch tmpfs for executed code (kernel sandbox only), or None."""
    scratch = ctx.settings.get("exec_scratch")
    return scratch if isinstance(scratch, str) and ctx.settings.get("sandbox") != NONE else None


def _run(ctx: CommandContext, data: bytes, shown: str, limits: dict[str, float]) -> tuple[RunResult, str]:
    """Run the scanned bytes (on the staged copy of the workspace when there is a scratch); the result and
    a note on what was not copied back."""
    ws, scratch = ctx.workspace, _scratch(ctx)
    manifest = stage_in(str(ws.base), scratch) if scratch else None
    try:
        result = run_python_source(
            data, shown, ws.base, cpu_seconds=limits["cpu"], memory_mb=int(limits["memory_mb"]),
            wall_seconds=limits["wall"], output_limit=int(_setting(ctx, "exec_output_limit")),
            keep_alive=getattr(ctx.ports, "keep_alive", None), **_sandbox(ctx))
    finally:
        staged = stage_out(scratch, ws, manifest) if scratch and manifest is not None else None
    note = staged.note() if staged is not None else ""
    if note and ctx.log is not None:
        ctx.log.warning("exec_output_not_copied", file=shown, refused=len(staged.refused),
                        skipped=len(staged.skipped))
    return result, note


def _log_result(ctx: CommandContext, shown: str, result: RunResult) -> None:
    if ctx.log is None:
        return
    ctx.log.info("python_file_executed", file=shown, exit_code=result.exit_code, reason=result.reason,
                 cpu_seconds=round(result.cpu_seconds, 3), refused_by=result.refused_by)
    if result.refused_by is not None:
        ctx.log.warning("sandbox_refused", agent=ctx.agent_id, rule=result.refused_by, file=shown)


@implements("execute_python_file")
def execute_python_file(ctx: CommandContext, file: str) -> str:
    """Run the file (after the static scan) and report its exit and output."""
    ws = ctx.workspace
    if ws is None:
        raise CommandError("no workspace is configured for this agent, so files cannot be executed")
    real = ws.resolve(file, must_exist=True)
    if not real.is_file():
        raise CommandError(f"cannot execute {file!r}: it is a folder")
    if real.suffix != ".py":
        raise CommandError(f"cannot execute {file!r}: only .py files can be executed")
    limits = {"cpu": _setting(ctx, "exec_cpu_seconds"), "memory_mb": _setting(ctx, "exec_memory_mb"),
              "wall": _setting(ctx, "exec_wall_seconds")}
    data, _ = ws.read_bytes(file, MAX_SOURCE_BYTES + 1)  # descriptor walk: no symlink swapped in
    shown = ws.show(real)
    try:
        result, note = _run(ctx, data, shown, limits)
    except SandboxRefused as exc:
        if ctx.log is not None:
            ctx.log.warning("code_refused", agent=ctx.agent_id, rule="static_scan", file=shown,
                            violations=len(exc.violations))
        raise CommandError(exc.message) from None
    except OSError as exc:
        raise CommandError(f"cannot execute {file!r}: {exc.strerror or exc}") from None
    _log_result(ctx, shown, result)
    status = result.describe(limits)
    output = result.output if result.output else "(no output)"
    text = f"{shown}: {status}\n{output}" + (f"\n[{note}]" if note else "")
    if result.reason != "ok":
        raise CommandError(text)
    return text
