"""The memory store: namespaces of texts, metadata and vectors, crash-safe.

Contract:

* Every change (add, delete, clear) is one checksummed record in the
  append-only log (``memory/wal.py``), fsynced before the method returns; the
  caller acknowledges only after that, so nothing acknowledged is lost on
  ``kill -9``. The change is applied in memory only after it is durable.
* When the current log segment passes ``snapshot_bytes`` the store rolls the
  log and writes a snapshot (``memory/snapshot.py``, checksummed) in a
  background thread from a copy of its state. The snapshot before it and
  the log segments after that one are kept; older ones are deleted.
  ``close`` writes a final snapshot so a restart replays nothing.
* Opening a store recovers: the newest snapshot whose checksums hold, then
  replay of every later log record; a torn last record (a crash mid-write)
  is ignored. A corrupt snapshot is logged (``memory_snapshot_corrupt``) and
  set aside, and the previous snapshot plus the log take its place.
* Ids are int64, unique across all namespaces of the store, never reused.
* An add may carry a request key: the key and the ids it got are part of
  the add's log record (and of snapshots), so the same key added again
  (:meth:`Store.added` tells) is answered with the first ids, even after a
  crash and a restart. The newest ``MAX_REQUESTS`` keys are kept.
* A write the disk refuses (full, read-only, failing) raises
  :class:`StorageError` and changes nothing; reads go on. A store opened on
  a read-only disk serves what it holds and refuses every change.
* Bad input raises :class:`InvalidRequest`, unknown ids :class:`NotFound`.
  Namespace names are not checked here (the service checks their syntax).

The store is not thread-safe: one thread (the service loop) calls it.
"""

from __future__ import annotations

import json
import os
import struct
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from memory import snapshot as snap
from memory.index import VectorIndex, as_matrix, normalized
from memory.wal import RefusingLog, Wal, read_records, segment_numbers, segment_path
from swarm_core.errors import ConfigError, InvalidRequest, NotFound, StorageError

STORE_FILE = "store.json"
DEFAULT_SNAPSHOT_BYTES = 64 << 20
MAX_REQUESTS = 100_000  # add request keys remembered (oldest forgotten first)
_LEN = struct.Struct("<I")


@dataclass(frozen=True)
class Hit:
    """One search result."""

    id: int
    score: float
    text: str
    namespace: str
    metadata: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "score": self.score, "text": self.text,
                "namespace": self.namespace, "metadata": self.metadata}


class _Namespace:
    __slots__ = ("index", "items")

    def __init__(self, index: VectorIndex, items: dict[int, tuple[str, dict[str, Any]]]) -> None:
        self.index = index
        self.items = items


def _encode(op: dict[str, Any], vectors: bytes = b"") -> bytes:
    head = json.dumps(op, ensure_ascii=False, allow_nan=False).encode()
    return _LEN.pack(len(head)) + head + vectors


def _decode(payload: bytes) -> tuple[dict[str, Any], bytes]:
    (n,) = _LEN.unpack_from(payload, 0)
    return json.loads(payload[_LEN.size:_LEN.size + n]), payload[_LEN.size + n:]


class Store:
    """Texts, metadata and vectors by namespace, persisted under ``data_dir``."""

    def __init__(self, data_dir: str | os.PathLike[str], dim: int, embedder: str, *,
                 snapshot_bytes: int = DEFAULT_SNAPSHOT_BYTES, log: Any = None) -> None:
        self.dir = Path(data_dir)
        self.dim = dim
        self.embedder = embedder
        self.snapshot_bytes = snapshot_bytes
        self._log = log
        self._ns: dict[str, _Namespace] = {}
        self._requests: OrderedDict[str, list[int]] = OrderedDict()
        self._next_id = 1
        self._snap_thread: threading.Thread | None = None
        self._snap_error: BaseException | None = None
        self._closed = False
        self.covers = 0  # last log segment folded into the newest snapshot
        self._previous = 0  # the snapshot before it: kept with the log after it, if the newest is corrupt
        self.dir.mkdir(parents=True, exist_ok=True)
        self._check_identity()
        self._recover()

    # ------------------------------------------------------------ recovery

    @property
    def _log_dir(self) -> Path:
        return self.dir / "log"

    @property
    def _snap_dir(self) -> Path:
        return self.dir / "snapshots"

    def _check_identity(self) -> None:
        path = self.dir / STORE_FILE
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"dim": self.dim, "embedder": self.embedder}))
            os.replace(tmp, path)
            return
        try:
            saved = json.loads(path.read_text())
            dim, name = int(saved["dim"]), str(saved["embedder"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"memory store file {path} is unreadable: {exc}", file=str(path)) from None
        if dim != self.dim:
            raise ConfigError(
                f"memory store {self.dir} holds {dim}-dimensional vectors ({name}) but the embedder "
                f"{self.embedder} gives {self.dim}; use another run directory or the same embedder",
                file=str(path),
            )
        if name != self.embedder and self._log is not None:
            self._log.warning("embedder_changed", stored=name, now=self.embedder)

    def _recover(self) -> None:
        image, self._previous = self._newest_intact_snapshot()
        if image is not None:
            self.covers = image.covers
            self._next_id = image.next_id
            self._ns = {name: _Namespace(ns.index, ns.items) for name, ns in image.namespaces.items()}
            self._requests.update(image.requests)
        segments = segment_numbers(self._log_dir)
        if segments and segments[0] > self.covers + 1 and self._log is not None:
            self._log.error("memory_log_missing", after_snapshot=self.covers, first_segment=segments[0])
        replayed = 0
        for payload in read_records(self._log_dir, after=self.covers, log=self._log):
            try:
                op, vectors = _decode(payload)
                self._apply(op, vectors)
            except (ValueError, KeyError, TypeError, struct.error) as exc:
                if self._log is not None:
                    self._log.error("log_record_skipped", error=f"{type(exc).__name__}: {exc}")
                continue
            replayed += 1
        start = max(self.covers + 1, *(segment_numbers(self._log_dir) or [1]))
        self._wal: Wal | RefusingLog
        try:
            self._drop_covered(self._previous)
            self._wal = Wal(self._log_dir, start=start)
        except OSError as exc:  # a read-only disk: serve what is there, refuse every change
            self._wal = RefusingLog(self._log_dir, start, exc.strerror or str(exc))
            if self._log is not None:
                self._log.error("memory_store_read_only", dir=str(self.dir), error=str(exc))
        if self._log is not None:
            self._log.info("memory_store_opened", dir=str(self.dir), snapshot=self.covers,
                           replayed=replayed, items=self.count(), next_id=self._next_id)

    def _newest_intact_snapshot(self) -> tuple[snap.Image | None, int]:
        """The newest snapshot whose checksums hold (corrupt ones are logged and set aside), and the
        number of the one before it (0: none)."""
        numbers = snap.snapshot_numbers(self._snap_dir)
        while numbers:
            number = numbers.pop()
            try:
                image = snap.read_snapshot(snap.snapshot_path(self._snap_dir, number))
            except snap.CorruptSnapshot as exc:
                if self._log is not None:
                    self._log.error("memory_snapshot_corrupt", snapshot=number, error=str(exc),
                                    fallback=f"snapshot {numbers[-1]}" if numbers else "the log alone")
                snap.set_aside(self._snap_dir, number)
                continue
            return image, numbers[-1] if numbers else 0
        return None, 0

    def _drop_covered(self, keep: int) -> None:
        """Delete log segments up to ``keep`` and snapshots before it: the snapshot ``keep`` (the one
        before the newest) and the log after it stay, the fallback when the newest is found corrupt."""
        for n in segment_numbers(self._log_dir):
            if n <= keep:
                segment_path(self._log_dir, n).unlink(missing_ok=True)
        snap.prune(self._snap_dir, keep=keep)

    # ------------------------------------------------------- applying changes

    def _apply(self, op: dict[str, Any], vectors: bytes) -> None:
        kind, name = op["op"], op["ns"]
        if kind == "add":
            ids = np.asarray(op["ids"], dtype=np.int64)
            vecs = np.frombuffer(vectors, dtype=np.float32).reshape(len(ids), self.dim)
            ns = self._ns.get(name)
            if ns is None:
                ns = self._ns[name] = _Namespace(VectorIndex(self.dim), {})
            ns.index.add_normalized(ids, vecs)
            for item_id, text, meta in zip(op["ids"], op["texts"], op["meta"]):
                ns.items[int(item_id)] = (text, meta)
            if len(ids):
                self._next_id = max(self._next_id, int(ids.max()) + 1)
            if op.get("req"):
                self._remember(op["req"], [int(i) for i in op["ids"]])
        elif kind == "delete":
            ns = self._ns.get(name)
            if ns is not None:
                ns.index.remove(op["ids"])
                for item_id in op["ids"]:
                    ns.items.pop(int(item_id), None)
        elif kind == "clear":
            self._ns.pop(name, None)
        else:
            raise ValueError(f"unknown log operation {kind!r}")

    def _remember(self, key: str, ids: list[int]) -> None:
        self._requests[key] = ids
        self._requests.move_to_end(key)
        while len(self._requests) > MAX_REQUESTS:
            self._requests.popitem(last=False)

    @property
    def write_problem(self) -> str:
        """Why this store refuses every change ("" when it takes them): the disk was read-only at open."""
        return self._wal.reason if isinstance(self._wal, RefusingLog) else ""

    def added(self, request_key: str) -> list[int] | None:
        """The ids the add under ``request_key`` got (None: no such add is on disk)."""
        return self._requests.get(request_key)

    def _commit(self, op: dict[str, Any], vectors: bytes = b"") -> None:
        """Write ``op`` durably, then apply it, then snapshot if the log is long."""
        try:
            payload = _encode(op, vectors)
        except (TypeError, ValueError) as exc:  # metadata JSON cannot carry (NaN, bytes...)
            raise InvalidRequest(f"metadata is not JSON-serialisable: {exc}", field="metadata") from None
        try:
            self._wal.append(payload)
            self._wal.sync()
        except OSError as exc:
            raise StorageError(f"the memory store cannot write to {self._log_dir}: "
                               f"{exc.strerror or exc}; nothing was changed (searches still work)",
                               dir=str(self._log_dir)) from None
        self._apply(op, vectors)
        if self._wal.bytes >= self.snapshot_bytes:
            try:
                self.snapshot()
            except OSError as exc:  # the change is durable in the log: a snapshot can come later
                self._snap_error = exc
                if self._log is not None:
                    self._log.error("memory_snapshot_failed", error=str(exc))

    # ------------------------------------------------------------ operations

    def add(self, namespace: str, texts: Sequence[str], vectors: Any,
            metadata: Sequence[dict[str, Any]] | None = None, request: str | None = None) -> list[int]:
        """Store ``texts`` with their ``vectors`` (any scale) durably; return their new ids.

        With a ``request`` key already added, nothing is stored: the first ids are returned.
        """
        if request and request in self._requests:
            return list(self._requests[request])
        n = len(texts)
        if n == 0:
            raise InvalidRequest("nothing to add: no texts given")
        metas = list(metadata) if metadata else [{} for _ in range(n)]
        if len(metas) != n:
            raise InvalidRequest(f"{len(metas)} metadata entries for {n} texts", field="metadata")
        try:
            vecs = normalized(as_matrix(vectors, self.dim))
        except ValueError as exc:
            raise InvalidRequest(f"bad vectors: {exc}", field="vectors", dim=self.dim) from None
        if vecs.shape[0] != n:
            raise InvalidRequest(f"{vecs.shape[0]} vectors for {n} texts", field="vectors")
        ids = list(range(self._next_id, self._next_id + n))
        op = {"op": "add", "ns": namespace, "ids": ids, "texts": list(texts), "meta": metas}
        if request:
            op["req"] = request
        self._commit(op, vecs.tobytes())
        return ids

    def delete(self, namespace: str, ids: Sequence[int]) -> int:
        """Delete ``ids`` from ``namespace`` durably, all or nothing; NotFound names missing ids."""
        wanted = sorted({int(i) for i in ids})
        if not wanted:
            raise InvalidRequest("nothing to delete: no ids given", field="ids")
        ns = self._ns.get(namespace)
        missing = [i for i in wanted if ns is None or i not in ns.items]
        if missing:
            shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
            raise NotFound(f"no memory item {shown} in namespace {namespace!r}",
                           namespace=namespace, missing=len(missing))
        self._commit({"op": "delete", "ns": namespace, "ids": wanted})
        return len(wanted)

    def clear(self, namespace: str) -> int:
        """Remove every item of ``namespace`` durably; return how many there were."""
        ns = self._ns.get(namespace)
        if ns is None:
            return 0
        count = len(ns.items)
        self._commit({"op": "clear", "ns": namespace})
        return count

    def search(self, namespaces: Sequence[str], vector: Any, k: int) -> list[Hit]:
        """The ``k`` best hits for ``vector`` across ``namespaces``, best first.

        A namespace that holds nothing (never written, or cleared) adds no hits.
        """
        try:
            q = normalized(as_matrix(vector, self.dim))
        except ValueError as exc:
            raise InvalidRequest(f"bad query vector: {exc}", field="vector", dim=self.dim) from None
        if q.shape[0] != 1:
            raise InvalidRequest("search takes one query vector", field="vector")
        found: list[tuple[float, int, str]] = []
        for name in dict.fromkeys(namespaces):
            ns = self._ns.get(name)
            if ns is None or not ns.items:
                continue
            scores, ids = ns.index.search_normalized(q, k)
            found.extend((float(s), int(i), name) for s, i in zip(scores[0], ids[0]) if i != -1)
        found.sort(key=lambda t: (-t[0], t[1]))
        hits = []
        for score, item_id, name in found[:k]:
            text, meta = self._ns[name].items[item_id]
            hits.append(Hit(item_id, score, text, name, meta))
        return hits

    def get(self, namespace: str, item_id: int) -> tuple[str, dict[str, Any]]:
        """The text and metadata of one item; NotFound when absent."""
        ns = self._ns.get(namespace)
        if ns is None or item_id not in ns.items:
            raise NotFound(f"no memory item {item_id} in namespace {namespace!r}")
        return ns.items[item_id]

    def count(self, namespace: str | None = None) -> int:
        """Items in ``namespace``, or in the whole store."""
        if namespace is not None:
            ns = self._ns.get(namespace)
            return len(ns.items) if ns else 0
        return sum(len(ns.items) for ns in self._ns.values())

    def stats(self) -> dict[str, Any]:
        """Counts per namespace and the store's persistence state."""
        return {
            "dim": self.dim, "embedder": self.embedder, "items": self.count(),
            "namespaces": {name: len(ns.items) for name, ns in sorted(self._ns.items())},
            "next_id": self._next_id, "snapshot": self.covers,
            "log_segment": self._wal.segment, "log_bytes": self._wal.bytes,
            "snapshot_running": self._snap_thread is not None and self._snap_thread.is_alive(),
            "snapshot_error": "" if self._snap_error is None else str(self._snap_error),
        }

    # ------------------------------------------------------------- snapshots

    def snapshot(self, wait: bool = False) -> bool:
        """Roll the log and snapshot a copy of the state in a background thread.

        Returns False (and does nothing) while a previous snapshot is still
        being written. ``wait`` blocks until this one is on disk.
        """
        if self._snap_thread is not None and self._snap_thread.is_alive():
            if not wait:
                return False
            self._snap_thread.join()
        covers = self._wal.roll()
        image = snap.Image(covers, self._next_id, self.dim, self.embedder, {
            name: snap.NamespaceImage(ns.index.clone(), dict(ns.items))
            for name, ns in self._ns.items() if ns.items
        }, dict(self._requests))
        self._snap_thread = threading.Thread(target=self._write_snapshot, args=(image,),
                                             name="memory-snapshot", daemon=True)
        self._snap_thread.start()
        if wait:
            self._snap_thread.join()
        return True

    def _write_snapshot(self, image: snap.Image) -> None:
        try:
            path = snap.write_snapshot(self._snap_dir, image)
            self._previous, self.covers = self.covers, image.covers
            self._drop_covered(self._previous)
            if self._log is not None:
                self._log.info("memory_snapshot_written", path=str(path), covers=image.covers,
                               items=sum(len(ns.items) for ns in image.namespaces.values()))
        except Exception as exc:  # thread boundary: the log still holds everything
            self._snap_error = exc
            if self._log is not None:
                self._log.exception("memory_snapshot_failed", covers=image.covers)

    def close(self, final_snapshot: bool = True) -> None:
        """Finish any snapshot, write a final one if the log has news, close the log (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._snap_thread is not None:
            self._snap_thread.join()
        try:
            if final_snapshot and self._wal.bytes > 0:
                self.snapshot(wait=True)
        except OSError as exc:  # a full disk: the log holds every change, a snapshot can come later
            if self._log is not None:
                self._log.error("memory_snapshot_failed", error=str(exc))
        try:
            self._wal.close()
        except OSError as exc:  # nothing acknowledged is lost: it was synced before its reply
            if self._log is not None:
                self._log.error("memory_log_close_failed", error=str(exc))
