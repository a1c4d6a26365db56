"""Unit tests of memory/index.py: cosine search, stable ids, delete, persistence."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from memory.index import VectorIndex, as_matrix

ROOT = Path(__file__).resolve().parents[2]


def _rand(n: int, dim: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def test_search_is_cosine_and_scale_free():
    """A vector scaled by any positive factor finds itself with score 1 and ranks by cosine."""
    idx = VectorIndex(8)
    vecs = _rand(50, 8)
    idx.add(np.arange(100, 150), vecs * 7.5)
    hits = idx.search(vecs[17] * 0.01, 3)
    assert hits[0][1] == 117
    assert hits[0][0] == pytest.approx(1.0, abs=1e-5)
    unit = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    expected = np.argsort(-(unit @ unit[17]))[:3] + 100
    assert [i for _, i in hits] == list(expected)


def test_ids_are_stable_across_deletes():
    """Deleting some ids leaves the others findable under the same ids."""
    idx = VectorIndex(4)
    vecs = np.eye(4, dtype=np.float32)
    idx.add([10, 20, 30, 40], vecs)
    assert idx.remove([20, 99]) == 1
    assert len(idx) == 3
    assert idx.search(vecs[3], 1)[0][1] == 40
    assert idx.search(vecs[0], 1)[0][1] == 10
    assert 20 not in [i for _, i in idx.search(vecs[1], 10)]


def test_search_never_returns_padding():
    """Asking for more hits than items returns only real ids."""
    idx = VectorIndex(4)
    idx.add([5], np.ones((1, 4)))
    assert [i for _, i in idx.search(np.ones(4), 10)] == [5]
    assert VectorIndex(4).search(np.ones(4), 10) == []


@pytest.mark.parametrize("bad, message", [
    (np.ones((1, 5)), "dimension is 5, expected 4"),
    (np.array([[1, np.nan, 0, 0]]), "NaN or infinity"),
    (np.zeros((1, 4)), "zero norm"),
])
def test_bad_vectors_are_refused(bad, message):
    """Wrong dimension, non-finite values and zero vectors raise ValueError saying which."""
    with pytest.raises(ValueError, match=message):
        VectorIndex(4).add([1], bad)
    with pytest.raises(ValueError, match=message):
        as_matrix(bad, 4)


def test_add_does_not_modify_the_callers_array():
    """add normalises a copy, not the caller's vectors."""
    vecs = np.full((2, 4), 3.0, dtype=np.float32)
    VectorIndex(4).add([1, 2], vecs)
    assert (vecs == 3.0).all()


def test_write_read_and_clone(tmp_path):
    """An index written and read back, or cloned, answers like the original and independently."""
    idx = VectorIndex(16)
    vecs = _rand(30, 16, seed=3)
    idx.add(np.arange(30) * 3, vecs)
    idx.write(tmp_path / "i.faiss")
    back = VectorIndex.read(tmp_path / "i.faiss", 16)
    clone = idx.clone()
    for other in (back, clone):
        assert other.search(vecs[4], 5) == idx.search(vecs[4], 5)
    clone.remove([12])
    assert len(clone) == 29 and len(idx) == 30
    with pytest.raises(ValueError, match="dimension 16, expected 8"):
        VectorIndex.read(tmp_path / "i.faiss", 8)


def test_reconstruct_gives_normalised_vector_or_keyerror():
    """reconstruct returns the stored unit vector and KeyError for an unknown id."""
    idx = VectorIndex(4)
    idx.add([7], [[3.0, 4.0, 0, 0]])
    assert np.allclose(idx.reconstruct(7), [0.6, 0.8, 0, 0])
    with pytest.raises(KeyError):
        idx.reconstruct(8)


def test_index_module_imports_no_zmq():
    """memory.index (and the store under it) import no zmq: checked in a fresh interpreter."""
    code = ("import sys, memory.index, memory.store, memory.snapshot, memory.wal; "
            "bad = [m for m in sys.modules if m == 'zmq' or m.startswith('zmq.')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_memory_client_imports_no_numpy_or_faiss():
    """memory.client stays light enough for agents: no numpy, no faiss."""
    code = ("import sys, memory.client; "
            "bad = [m for m in ('numpy', 'faiss') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
