"""The ``record`` provider: a real provider whose every answer is written to a cassette.

The cassette has the replay format exactly (see ``providers/replay.py``), so
``llm: {provider: replay, cassette: <record_to>}`` replays the run
deterministically. An answer that is a JSON object is stored as a mapping
(readable; replay sends it back as JSON text), anything else as a string
(verbatim).

The file is rewritten atomically after every call (temporary file, fsync,
rename), so a run that crashes leaves a valid cassette holding every answer
up to its last call. An agent is recorded under its name, as replay looks it
up; a second agent given a name already used is recorded under its own id
(``writer-2``), which replay looks up first.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import yaml

from orchestrator.gateway.providers.base import Provider, Request, Result, usage_bound
from swarm_core.errors import ProviderError


def cassette_item(text: str) -> Any:
    """How an answer is stored: a JSON object as a mapping, anything else verbatim.

    An object with a ``delay_s`` key stays a string: replay would strip that key.
    """
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if isinstance(value, dict) and "delay_s" not in value:
        return value
    return text


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so a reader sees the old or the new file, never half."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


class RecordProvider:
    """Forward to ``inner`` and append each answer to the cassette at ``path``."""

    name = "record"

    def __init__(self, inner: Provider, path: str | Path) -> None:
        self._inner = inner
        self.concurrency = inner.concurrency
        self._path = Path(path)
        self._lock = threading.Lock()
        self._tracks: dict[str, list[Any]] = {}
        self._owner: dict[str, str] = {}  # name -> the agent id recorded under it
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self._path, "{}\n")
        except OSError as exc:
            raise ProviderError(f"record: cannot write the cassette {self._path}: {exc}",
                                path=str(self._path)) from None

    def _key(self, req: Request) -> str:
        name = req.name or req.agent_id
        owner = self._owner.setdefault(name, req.agent_id)
        return name if owner == req.agent_id else req.agent_id

    def complete(self, req: Request) -> Result:
        result = self._inner.complete(req)
        with self._lock:
            self._tracks.setdefault(self._key(req), []).append(cassette_item(result.text))
            text = yaml.safe_dump(self._tracks, allow_unicode=True, sort_keys=False, width=100)
            try:
                write_atomic(self._path, text)
            except OSError as exc:
                raise ProviderError(f"record: cannot write the cassette {self._path}: {exc}",
                                    path=str(self._path)) from None
        return result

    def usage_bound(self, req: Request) -> tuple[int, int]:
        return usage_bound(self._inner, req)

    def close(self) -> None:
        self._inner.close()
