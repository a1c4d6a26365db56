"""structlog, configured once per process.

Every process writes JSON lines to ``<run_dir>/logs/<name>.jsonl``; a process
that has a person watching (the CLI in the foreground) also renders events
readably on stderr. ``role`` and ``agent_id`` are bound on every event.

Agent processes are forked from a zygote that imported structlog once, so its
import cost (~0.1-0.5 s with the dev console renderer) is paid once per swarm,
not per agent.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import IO, Any

import structlog


class _JsonLineTee:
    """Processor: write the event as one JSON line to a file, pass it on.

    An event with ``exc_info`` (``log.exception``, or an exception passed as
    ``exc_info=``) gets its traceback as text in the ``exception`` field.
    """

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def __call__(self, logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
        line = event
        if "exc_info" in event:  # a copy: the console renderer formats the original itself
            line = structlog.processors.format_exc_info(logger, method, dict(event))
        try:
            self._stream.write(json.dumps(line, default=repr, ensure_ascii=False) + "\n")
            self._stream.flush()
        except (OSError, ValueError):
            pass  # a full disk or a closed file must not take a process down
        return event


def _drop(logger: Any, method: str, event: dict[str, Any]) -> Any:
    raise structlog.DropEvent


def _timestamp(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    event["ts"] = round(time.time(), 6)
    return event


def log_path(run_dir: str | os.PathLike[str], name: str) -> Path:
    """Where the JSON lines of process ``name`` go."""
    return Path(run_dir) / "logs" / f"{name}.jsonl"


def configure(
    *,
    role: str,
    agent_id: str = "",
    run_dir: str | os.PathLike[str] | None = None,
    name: str | None = None,
    console: bool = False,
) -> structlog.typing.FilteringBoundLogger:
    """Configure structlog for this process and return a bound logger.

    Called once at process start (again in a forked child, which replaces the
    parent's configuration).
    """
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        _timestamp,
    ]
    if run_dir is not None:
        path = log_path(run_dir, name or agent_id or role)
        path.parent.mkdir(parents=True, exist_ok=True)
        stream = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - lives with the process
        processors.append(_JsonLineTee(stream))
    if console:
        processors.append(structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()))
    else:
        processors.append(_drop)
    structlog.configure(
        processors=processors,
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(0),
        cache_logger_on_first_use=False,
    )
    return structlog.get_logger().bind(role=role, agent_id=agent_id)


def get_logger(**bind: Any) -> structlog.typing.FilteringBoundLogger:
    """A logger bound with extra fields (for modules that take no logger port)."""
    return structlog.get_logger().bind(**bind)
