"""The ``replay`` provider: answers from a recorded cassette, one per model call.

Cassette format (the README's "Replay cassettes")::

    manager:                       # agent name -> list of responses
      - {thoughts: {...}, command: {name: start_agent, args: {...}}}
      - "not JSON at all"          # a string is sent verbatim
    writer:                        # long form
      responses:
        - {command: {name: write_to_file, args: {...}}, delay_s: 2.5}
      repeat: true                 # the last response repeats for ever

* A mapping item is sent as its JSON text (``json.dumps``), a string item
  verbatim. ``delay_s`` in a mapping item is the time the model "takes"
  (the provider waits that long) and is removed from the answer.
* Lookup: the cassette key equal to the agent's id if there is one (a second
  agent with a name already used, e.g. ``writer-2``, as ``record`` writes
  it), else the agent's name (``Complete.name``), else its id.
* Every agent id has its own cursor: two agents given the same name each
  replay that name's list from the start. With :meth:`ReplayProvider.persist_cursors`
  (the gateway keeps them in the run directory) the cursors survive a restart
  of the gateway: it goes on where it was instead of rewinding every cassette.
* A list that runs out (without ``repeat``) fails that call with
  :class:`CassetteExhausted` naming the agent and the cassette.

Token usage is estimated (four characters a token) so quotas work; like a
real model's, the completion counts at most ``max_tokens``.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.gateway.providers.base import Request, Result
from orchestrator.gateway.providers.cursors import CursorLog
from orchestrator.gateway.quotas import estimate_tokens
from swarm_core.errors import CassetteExhausted, ConfigError
from swarm_core.yamlfile import load_yaml


@dataclass(frozen=True, slots=True)
class Answer:
    """One cassette response: the text sent and the simulated latency."""

    text: str
    delay_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Track:
    """One agent's responses and whether the last repeats."""

    answers: tuple[Answer, ...]
    repeat: bool = False


def _answer(item: Any, where: str) -> Answer:
    if isinstance(item, str):
        return Answer(item)
    if isinstance(item, dict):
        body = dict(item)
        delay = body.pop("delay_s", 0.0)
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay < 0:
            raise ConfigError(f"{where}: delay_s must be a number of seconds >= 0, got {delay!r}",
                              field="delay_s")
        try:
            text = json.dumps(body, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: cannot be sent as JSON: {exc}") from None
        return Answer(text, float(delay))
    raise ConfigError(f"{where}: a response must be a mapping (sent as JSON) or a string, "
                      f"got {type(item).__name__}")


def parse_cassette(data: Any, source: str) -> dict[str, Track]:
    """Validate loaded cassette YAML; errors name ``source`` and the agent/item."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a cassette must be a mapping of agent name to responses",
                          file=source)
    tracks: dict[str, Track] = {}
    for agent, value in data.items():
        where = f"{source}: {agent}"
        repeat = False
        if isinstance(value, dict):
            unknown = sorted(set(value) - {"responses", "repeat"})
            if unknown or "responses" not in value:
                raise ConfigError(f"{where}: the long form takes 'responses' (a list) and "
                                  f"'repeat' (true/false); got keys {sorted(value)}", file=source)
            repeat = value.get("repeat", False)
            if not isinstance(repeat, bool):
                raise ConfigError(f"{where}: repeat must be true or false", file=source)
            value = value["responses"]
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list of responses, got {type(value).__name__}",
                              file=source)
        answers = tuple(_answer(item, f"{where}[{i}]") for i, item in enumerate(value))
        if repeat and not answers:
            raise ConfigError(f"{where}: repeat needs at least one response", file=source)
        tracks[str(agent)] = Track(answers, repeat)
    return tracks


def load_cassette(path: str | Path) -> dict[str, Track]:
    """Read and validate a cassette file (ConfigError naming the file on any problem)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: cassette not found", file=str(p)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read cassette: {exc}", file=str(p)) from None
    data, _ = load_yaml(text, str(p))
    return parse_cassette(data, str(p))


class ReplayProvider:
    """Serve cassette answers; thread-safe (calls of many agents run at once)."""

    name = "replay"
    concurrency = 0

    def __init__(self, tracks: dict[str, Track], source: str = "cassette",
                 sleep: Any = time.sleep, cursors: CursorLog | None = None) -> None:
        self._tracks = tracks
        self._source = source
        self._sleep = sleep
        self._log = cursors
        self._cursors: dict[str, int] = dict(cursors.values) if cursors is not None else {}
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, path: str | Path, cursors: CursorLog | None = None) -> "ReplayProvider":
        return cls(load_cassette(path), source=str(path), cursors=cursors)

    def persist_cursors(self, path: str | Path) -> None:
        """Keep the cursors in ``path`` from now on, starting from what it holds (a restarted gateway)."""
        log = CursorLog(path)
        with self._lock:
            self._log = log
            self._cursors = dict(log.values)

    def _key(self, req: Request) -> str | None:
        for key in (req.agent_id, req.name):
            if key and key in self._tracks:
                return key
        return None

    def next_answer(self, req: Request) -> Answer:
        """Consume the agent's next answer (CassetteExhausted when there is none)."""
        key = self._key(req)
        who = req.name or req.agent_id
        if key is None:
            have = ", ".join(sorted(self._tracks)) or "none"
            raise CassetteExhausted(
                f"replay cassette {self._source} has no responses for agent {who!r} "
                f"(agents in it: {have})", agent=req.agent_id, cassette=self._source)
        track = self._tracks[key]
        with self._lock:
            i = self._cursors.get(req.agent_id, 0)
            if i >= len(track.answers):
                if not track.repeat:
                    raise CassetteExhausted(
                        f"replay cassette {self._source} ran out of responses for agent {who!r} "
                        f"after {len(track.answers)}", agent=req.agent_id, cassette=self._source)
                i = len(track.answers) - 1
            if self._cursors.get(req.agent_id) != i + 1:
                self._cursors[req.agent_id] = i + 1
                if self._log is not None:
                    self._log.set(req.agent_id, i + 1)  # before serving it: see cursors.py
        return track.answers[i]

    def complete(self, req: Request) -> Result:
        answer = self.next_answer(req)
        if answer.delay_s > 0:
            self._sleep(req.remaining(answer.delay_s))
        return Result(answer.text, estimate_tokens(req.prompt), min(estimate_tokens(answer.text), req.max_tokens),
                      "replay")

    def usage_bound(self, req: Request) -> tuple[int, int]:
        """Exactly what :meth:`complete` may count: the prompt's estimate and ``max_tokens``."""
        return estimate_tokens(req.prompt), req.max_tokens

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
