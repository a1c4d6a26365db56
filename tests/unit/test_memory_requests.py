"""The memory store's idempotent adds and its behaviour when the disk refuses writes (real files).

A failing disk is simulated by a write hook (``os.write`` / ``os.fsync`` of
the log raising the errors a full or read-only disk gives); the tests with a
real full or read-only filesystem are in tests/integration/test_storage_faults.py.
"""

from __future__ import annotations

import errno

import numpy as np
import pytest

from memory import wal
from memory.store import Store
from swarm_core.errors import StorageError

DIM = 8


def _vecs(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)


@pytest.fixture
def open_store(tmp_path):
    """Factory: open a Store on tmp_path/mem; every store opened is closed at teardown."""
    opened: list[Store] = []

    def make(**kw) -> Store:
        kw.setdefault("snapshot_bytes", 1 << 30)
        s = Store(tmp_path / "mem", DIM, "test", **kw)
        opened.append(s)
        return s

    yield make
    for s in opened:
        s.close(final_snapshot=False)


def _failing(monkeypatch, name: str, err: int) -> None:
    def fail(*args, **kw):
        raise OSError(err, f"simulated {errno.errorcode[err]}")

    monkeypatch.setattr(wal.os, name, fail)


def test_an_add_request_is_stored_once(open_store):
    """The same request key added twice stores one item and returns the first ids both times."""
    s = open_store()
    v = _vecs(2)
    first = s.add("shared", ["alpha", "beta"], v, request="cli-1:r1")
    again = s.add("shared", ["alpha", "beta"], v, request="cli-1:r1")
    assert first == again and s.count() == 2 and s.added("cli-1:r1") == first
    assert s.add("shared", ["alpha"], v[:1], request="cli-1:r2") != first and s.count() == 3


@pytest.mark.parametrize("snapshot", [False, True])
def test_request_keys_survive_a_crash_and_a_snapshot(open_store, snapshot):
    """After kill -9 (the log replayed) or a snapshot, a retried key still gets the first ids."""
    s = open_store()
    first = s.add("shared", ["alpha"], _vecs(1), request="a:1")
    if snapshot:
        s.snapshot(wait=True)
    s.close(final_snapshot=False)
    s2 = open_store()
    assert s2.added("a:1") == first
    assert s2.add("shared", ["alpha"], _vecs(1), request="a:1") == first and s2.count() == 1


@pytest.mark.parametrize("call, err", [("write", errno.ENOSPC), ("write", errno.EROFS),
                                       ("fsync", errno.EIO)])
def test_a_refused_write_changes_nothing_and_reads_go_on(open_store, monkeypatch, call, err):
    """A full, read-only or failing disk: the add raises StorageError, nothing changes, searches work."""
    s = open_store()
    v = _vecs(3)
    kept = s.add("shared", ["kept"], v[:1])
    with monkeypatch.context() as patch:
        _failing(patch, call, err)
        with pytest.raises(StorageError, match="cannot write"):
            s.add("shared", ["lost"], v[1:2], request="x:1")
        assert s.count() == 1 and s.added("x:1") is None
        assert s.search(["shared"], v[0], 5)[0].id == kept[0]
    s.close(final_snapshot=False)
    s2 = open_store()
    assert [h.text for h in s2.search(["shared"], v[0], 5)] == ["kept"]


def test_a_full_disk_that_frees_space_takes_writes_again(open_store, monkeypatch):
    """After ENOSPC (the half record cut off again) the next add, with space back, is stored and durable."""
    s = open_store()
    v = _vecs(2)
    with monkeypatch.context() as patch:
        _failing(patch, "write", errno.ENOSPC)
        with pytest.raises(StorageError):
            s.add("shared", ["first try"], v[:1])
    ids = s.add("shared", ["second try"], v[1:])
    s.close(final_snapshot=False)
    assert [h.id for h in open_store().search(["shared"], v[1], 5)] == ids


def test_a_snapshot_the_disk_refuses_loses_nothing(open_store, monkeypatch):
    """A snapshot that cannot start (no room for the next log segment) leaves the add durable in the log."""
    s = open_store(snapshot_bytes=1)
    v = _vecs(1)
    with monkeypatch.context() as patch:
        real_open = wal.os.open

        def no_new_files(path, flags, *args):
            if flags & wal.os.O_CREAT and not wal.Path(path).exists():
                raise OSError(errno.ENOSPC, "simulated ENOSPC")
            return real_open(path, flags, *args)

        patch.setattr(wal.os, "open", no_new_files)
        ids = s.add("shared", ["durable"], v)
    s.close(final_snapshot=False)
    assert [h.id for h in open_store().search(["shared"], v[0], 1)] == ids


def test_a_store_opened_on_a_read_only_disk_serves_and_refuses(open_store, monkeypatch):
    """When the log cannot be opened for writing, the store serves what it holds and refuses every change."""
    s = open_store()
    v = _vecs(1)
    ids = s.add("shared", ["before"], v)
    s.close(final_snapshot=False)
    with monkeypatch.context() as patch:
        _failing(patch, "open", errno.EROFS)
        s2 = open_store()
    assert "EROFS" in s2.write_problem
    assert [h.id for h in s2.search(["shared"], v[0], 1)] == ids
    with pytest.raises(StorageError, match="cannot write"):
        s2.add("shared", ["after"], v)
    assert s2.count() == 1
