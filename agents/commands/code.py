"""``execute_python_file``: scan a workspace file, then run it in the sandbox.

The file is resolved through ``ctx.workspace``; :func:`agents.sandbox.run_python_file`
refuses it with the reasons if the static scan finds anything (nothing runs),
otherwise runs it with the workspace folder as cwd and the limits from
``ctx.settings`` (``exec_cpu_seconds`` 10, ``exec_memory_mb`` 512,
``exec_wall_seconds`` 30, ``exec_output_limit`` 8000 bytes), calling
``ctx.ports.keep_alive`` while it waits so the agent keeps heartbeating.
"""

from __future__ import annotations

from typing import Any

from agents.commands.binding import implements
from agents.commands.context import CommandContext, CommandError
from agents.sandbox import MAX_SOURCE_BYTES, SandboxRefused, run_python_source

DEFAULTS = {"exec_cpu_seconds": 10, "exec_memory_mb": 512, "exec_wall_seconds": 30, "exec_output_limit": 8000}


def _setting(ctx: CommandContext, key: str) -> float:
    value = ctx.settings.get(key, DEFAULTS[key])
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return DEFAULTS[key]
    return value


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
    keep_alive: Any = getattr(ctx.ports, "keep_alive", None)
    data, _ = ws.read_bytes(file, MAX_SOURCE_BYTES + 1)  # descriptor walk: no symlink swapped in
    try:
        result = run_python_source(
            data, ws.show(real), ws.base, cpu_seconds=limits["cpu"], memory_mb=int(limits["memory_mb"]),
            wall_seconds=limits["wall"], output_limit=int(_setting(ctx, "exec_output_limit")),
            keep_alive=keep_alive)
    except SandboxRefused as exc:
        raise CommandError(exc.message) from None
    except OSError as exc:
        raise CommandError(f"cannot execute {file!r}: {exc.strerror or exc}") from None
    if ctx.log is not None:
        ctx.log.info("python_file_executed", file=ws.show(real), exit_code=result.exit_code,
                     reason=result.reason, cpu_seconds=round(result.cpu_seconds, 3))
    status = result.describe(limits)
    output = result.output if result.output else "(no output)"
    text = f"{ws.show(real)}: {status}\n{output}"
    if result.reason != "ok":
        raise CommandError(text)
    return text
