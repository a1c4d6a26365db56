"""A cosine-similarity vector index for one memory namespace (FAISS).

Contract:

* ``VectorIndex(dim)`` wraps ``faiss.IndexIDMap2(faiss.IndexFlatIP(dim))``:
  exact inner-product search over L2-normalised float32 vectors, which is
  cosine similarity; scores lie in [-1, 1], higher is closer.
* Ids are caller-chosen int64 values and stay stable across deletes (the
  id map translates them), so a store can persist them.
* ``add`` normalises a copy of the vectors; the caller keeps its array.
* ``search`` returns at most ``k`` ``(score, id)`` pairs, best first; it
  never returns FAISS's ``-1`` padding.

This module knows nothing of the bus (it imports no zmq) and has no global
state; :func:`single_thread` sets FAISS's process-wide OpenMP thread count,
which a process calls once at start (one thread is faster for single queries
on small machines).
"""

from __future__ import annotations

import os
from pathlib import Path

import faiss
import numpy as np


def single_thread() -> None:
    """Make FAISS use one OpenMP thread (single queries got slower with two)."""
    faiss.omp_set_num_threads(1)


def as_matrix(vectors: object, dim: int) -> np.ndarray:
    """Return ``vectors`` as a C-contiguous float32 ``(n, dim)`` matrix or raise ValueError.

    Rejects a wrong shape, non-finite values and zero vectors (which have no
    direction, so no cosine).
    """
    try:
        arr = np.asarray(vectors, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"vectors are not numeric: {exc}") from None
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2 or arr.shape[1] != dim:
        got = arr.shape[-1] if arr.ndim >= 1 and arr.size else 0
        raise ValueError(f"vector dimension is {got}, expected {dim}")
    if not np.isfinite(arr).all():
        raise ValueError("vectors contain NaN or infinity")
    norms = np.linalg.norm(arr, axis=1)
    if (norms == 0).any():
        raise ValueError(f"vector {int(np.argmin(norms))} has zero norm")
    return np.ascontiguousarray(arr)


def normalized(vectors: np.ndarray) -> np.ndarray:
    """A normalised float32 copy of a ``(n, dim)`` matrix (L2 norm 1 per row)."""
    out = np.array(vectors, dtype=np.float32, order="C", copy=True)
    faiss.normalize_L2(out)
    return out


class VectorIndex:
    """Exact cosine search over id-tagged vectors of one dimension."""

    def __init__(self, dim: int, index: faiss.Index | None = None) -> None:
        if dim <= 0:
            raise ValueError(f"dimension must be positive, got {dim}")
        self.dim = dim
        self._index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        if self._index.d != dim:
            raise ValueError(f"index has dimension {self._index.d}, expected {dim}")

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: np.ndarray | list[int], vectors: np.ndarray) -> None:
        """Add ``vectors`` (``(n, dim)``, any scale) under ``ids`` (n distinct int64)."""
        ids_arr = np.ascontiguousarray(ids, dtype=np.int64)
        vecs = as_matrix(vectors, self.dim)
        if ids_arr.shape != (vecs.shape[0],):
            raise ValueError(f"{ids_arr.size} ids for {vecs.shape[0]} vectors")
        if ids_arr.size == 0:
            return
        self._index.add_with_ids(normalized(vecs), ids_arr)

    def add_normalized(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors that are already normalised float32 (log replay, snapshots)."""
        if len(ids):
            self._index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32),
                                     np.ascontiguousarray(ids, dtype=np.int64))

    def remove(self, ids: np.ndarray | list[int]) -> int:
        """Remove ``ids``; return how many were present."""
        ids_arr = np.ascontiguousarray(ids, dtype=np.int64)
        if ids_arr.size == 0:
            return 0
        return int(self._index.remove_ids(ids_arr))

    def reconstruct(self, item_id: int) -> np.ndarray:
        """The stored (normalised) vector of ``item_id``; KeyError when absent."""
        try:
            return self._index.reconstruct(int(item_id))
        except RuntimeError:
            raise KeyError(item_id) from None

    def search(self, query: np.ndarray, k: int) -> list[tuple[float, int]]:
        """The ``k`` nearest ``(score, id)`` pairs to one query vector, best first."""
        if k <= 0 or len(self) == 0:
            return []
        q = normalized(as_matrix(query, self.dim))
        if q.shape[0] != 1:
            raise ValueError(f"search takes one query vector, got {q.shape[0]}")
        scores, ids = self._index.search(q, min(k, len(self)))
        return [(float(s), int(i)) for s, i in zip(scores[0], ids[0]) if i != -1]

    def search_normalized(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Raw FAISS search of a normalised ``(1, dim)`` float32 query: ``(scores, ids)`` rows."""
        return self._index.search(query, min(k, max(len(self), 1)))

    def clone(self) -> "VectorIndex":
        """An independent copy (for a snapshot written while this one changes)."""
        return VectorIndex(self.dim, faiss.clone_index(self._index))

    def write(self, path: str | os.PathLike[str]) -> None:
        """Write the index to ``path`` (not atomic: the store writes a temp file and renames)."""
        faiss.write_index(self._index, str(path))

    @classmethod
    def read(cls, path: str | os.PathLike[str], dim: int) -> "VectorIndex":
        """Load an index written by :meth:`write`; ValueError when its dimension differs."""
        index = faiss.read_index(str(Path(path)))
        return cls(dim, index)
