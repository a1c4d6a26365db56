"""File commands: ``read_file``, ``write_to_file``, ``append_to_file``, ``delete_file``, ``search_files``.

Every path goes through ``ctx.workspace`` (:class:`agents.workspace.Workspace`):
it resolves inside the swarm workspace (or the agent's own folder) or the
command fails with the reason. Reads are bounded (``file_read_limit`` bytes,
default 20000; longer files are truncated with a note), writes are bounded
(``file_write_limit`` bytes, default 1 MB), listings are bounded
(``file_list_limit`` entries, default 200). Text is UTF-8.
"""

from __future__ import annotations

from typing import Any

from agents.commands.binding import implements
from agents.commands.context import CommandContext, CommandError

READ_LIMIT = 20_000
WRITE_LIMIT = 1_000_000
LIST_LIMIT = 200


def _workspace(ctx: CommandContext) -> Any:
    if ctx.workspace is None:
        raise CommandError("no workspace is configured for this agent, so file commands are unavailable")
    return ctx.workspace


def _limit(ctx: CommandContext, key: str, default: int) -> int:
    value = ctx.settings.get(key, default)
    return value if isinstance(value, int) and value > 0 else default


def _text(ctx: CommandContext, text: Any, file: Any) -> bytes:
    if not isinstance(text, str):
        raise CommandError(f"text must be a string, got {type(text).__name__}")
    data = text.encode("utf-8", "surrogatepass")
    limit = _limit(ctx, "file_write_limit", WRITE_LIMIT)
    if len(data) > limit:
        raise CommandError(f"text for {file!r} is {len(data)} bytes, more than the limit of {limit}")
    return data


@implements("read_file")
def read_file(ctx: CommandContext, file: str) -> str:
    """The file's text, truncated with a note past the read limit."""
    limit = _limit(ctx, "file_read_limit", READ_LIMIT)
    data, size = _workspace(ctx).read_bytes(file, limit)
    text = data.decode("utf-8", "replace")
    if size > len(data):
        return f"{text}\n[truncated: showing the first {len(data)} of {size} bytes of {file}]"
    return text if text else f"({file} is empty)"


@implements("write_to_file")
def write_to_file(ctx: CommandContext, file: str, text: str) -> str:
    """Replace the file's content with ``text`` (folders are created as needed)."""
    data = _text(ctx, text, file)
    ws = _workspace(ctx)
    real = ws.write_bytes(file, data)
    return f"Wrote {len(data)} bytes to {ws.show(real)}."


@implements("append_to_file")
def append_to_file(ctx: CommandContext, file: str, text: str) -> str:
    """Add ``text`` at the end of the file (created if missing)."""
    data = _text(ctx, text, file)
    ws = _workspace(ctx)
    real = ws.write_bytes(file, data, append=True)
    return f"Appended {len(data)} bytes to {ws.show(real)}."


@implements("delete_file")
def delete_file(ctx: CommandContext, file: str) -> str:
    """Remove one file."""
    ws = _workspace(ctx)
    real = ws.delete(file)
    return f"Deleted {ws.show(real)}."


@implements("search_files")
def search_files(ctx: CommandContext, directory: str) -> str:
    """Every file under ``directory``, one path per line, bounded."""
    if isinstance(directory, str) and not directory.strip():
        directory = "."
    limit = _limit(ctx, "file_list_limit", LIST_LIMIT)
    files, truncated = _workspace(ctx).list_files(directory, limit)
    if not files:
        return f"No files in {directory!r}."
    note = f"\n[listing truncated after {limit} files]" if truncated else ""
    return "\n".join(files) + note
