"""A background thread that embeds texts, so the service loop never blocks on a model.

Contract: :meth:`EmbedWorker.submit` queues ``(texts, kind)`` and returns at
once; the worker thread embeds them in submission order and hands
``done(vectors, error)`` back through ``post`` (the bus client's
``call_soon_threadsafe``), so ``done`` runs on the loop thread, which alone
touches the store. Exactly one of ``vectors`` and ``error`` is None. While
embedding runs (ctypes and HTTP release the GIL) the loop keeps answering
searches by vector and heartbeating.
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable, Sequence

import numpy as np

from memory.embed import Embedder, Kind

Done = Callable[[np.ndarray | None, BaseException | None], None]
_STOP = object()


class EmbedWorker:
    """One thread running ``embedder.embed`` for queued jobs, in order."""

    def __init__(self, embedder: Embedder, post: Callable[[Callable[[], None]], None],
                 log: Any = None) -> None:
        self._embedder = embedder
        self._post = post
        self._log = log
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._pending = 0  # touched only on the loop thread
        self._thread = threading.Thread(target=self._run, name="memory-embed", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        """Jobs submitted whose ``done`` has not run yet."""
        return self._pending

    def submit(self, texts: Sequence[str], kind: Kind, done: Done) -> None:
        """Queue a job; ``done`` runs later on the loop thread."""
        self._pending += 1

        def finish(vectors: np.ndarray | None, error: BaseException | None) -> None:
            self._pending -= 1
            done(vectors, error)

        self._jobs.put((list(texts), kind, finish))

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is _STOP:
                return
            texts, kind, finish = job
            vectors: np.ndarray | None = None
            error: BaseException | None = None
            try:
                vectors = self._embedder.embed(texts, kind)
            except Exception as exc:  # thread boundary: the loop answers with the error
                error = exc
            self._post(lambda v=vectors, e=error, f=finish: f(v, e))

    def stop(self, timeout: float = 10.0) -> bool:
        """Let queued jobs finish, end the thread; False if it is still busy after ``timeout``."""
        self._jobs.put(_STOP)
        self._thread.join(timeout)
        return not self._thread.is_alive()
