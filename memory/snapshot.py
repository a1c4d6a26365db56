"""Point-in-time copies of the memory store, written atomically.

Contract:

* A snapshot is a directory ``<dir>/<n:08d>/`` where ``n`` is the last log
  segment it covers. It holds ``manifest.json``, per namespace a FAISS
  index (``ns-<i>.faiss``) and its items (``ns-<i>.items.jsonl``: one
  ``[id, text, metadata]`` per line), and ``requests.json``: the ids each
  idempotent add request was given (absent in older snapshots).
* The manifest carries the SHA-256 of every other file and of itself
  (``sha256``, over its canonical JSON without that key). :func:`read_snapshot`
  checks them all before it loads anything and raises
  :class:`CorruptSnapshot` on any mismatch (the store then falls back to the
  previous snapshot and the log). Format 1 snapshots (no checksums) still load.
* :func:`write_snapshot` writes everything into ``tmp-<n>``, fsyncs every
  file and the directory, then renames it to ``<n>`` and fsyncs the parent:
  a snapshot directory with a number for a name is always complete.
* :func:`prune` removes older snapshots and leftover temp and corrupt
  directories; :func:`set_aside` renames a corrupt one out of the way.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memory.index import VectorIndex
from memory.wal import fsync_dir

MANIFEST = "manifest.json"
REQUESTS = "requests.json"
FORMAT = 2
FORMATS = (1, 2)  # what read_snapshot accepts (1: before checksums)
CORRUPT = "corrupt-"


class CorruptSnapshot(ValueError):
    """A snapshot whose files do not match their checksums (or cannot be read at all)."""


@dataclass
class NamespaceImage:
    """One namespace as saved: its index and ``id -> (text, metadata)``."""

    index: VectorIndex
    items: dict[int, tuple[str, dict[str, Any]]]


@dataclass
class Image:
    """Everything a snapshot holds."""

    covers: int  # last log segment folded in
    next_id: int
    dim: int
    embedder: str
    namespaces: dict[str, NamespaceImage] = field(default_factory=dict)
    requests: dict[str, list[int]] = field(default_factory=dict)  # add request key -> the ids it got


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _manifest_sum(manifest: dict[str, Any]) -> str:
    body = {k: v for k, v in manifest.items() if k != "sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _verify(path: Path, manifest: dict[str, Any]) -> None:
    """CorruptSnapshot unless the manifest and every file it lists match their checksums."""
    if manifest.get("format") == 1:
        return  # written before checksums existed
    if manifest.get("sha256") != _manifest_sum(manifest):
        raise CorruptSnapshot(f"snapshot {path}: {MANIFEST} does not match its checksum")
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise CorruptSnapshot(f"snapshot {path}: {MANIFEST} lists no file checksums")
    for name, want in files.items():
        try:
            got = _sha256(path / name)
        except OSError as exc:
            raise CorruptSnapshot(f"snapshot {path}: cannot read {name}: {exc}") from None
        if got != want:
            raise CorruptSnapshot(f"snapshot {path}: {name} does not match its checksum")


def write_snapshot(snap_dir: Path, image: Image) -> Path:
    """Write ``image`` atomically as ``snap_dir/<covers>``; return its path."""
    snap_dir.mkdir(parents=True, exist_ok=True)
    final = snap_dir / f"{image.covers:08d}"
    tmp = snap_dir / f"tmp-{image.covers:08d}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    entries = []
    for i, (name, ns) in enumerate(sorted(image.namespaces.items())):
        stem = f"ns-{i}"
        ns.index.write(tmp / f"{stem}.faiss")
        with open(tmp / f"{stem}.items.jsonl", "w", encoding="utf-8") as f:
            for item_id, (text, meta) in ns.items.items():
                f.write(json.dumps([item_id, text, meta], ensure_ascii=False) + "\n")
        entries.append({"name": name, "file": stem, "count": len(ns.items)})
    (tmp / REQUESTS).write_text(json.dumps(image.requests, ensure_ascii=False), encoding="utf-8")
    manifest: dict[str, Any] = {
        "format": FORMAT, "covers": image.covers, "next_id": image.next_id,
        "dim": image.dim, "embedder": image.embedder, "namespaces": entries,
        "files": {p.name: _sha256(p) for p in sorted(tmp.iterdir())},
    }
    manifest["sha256"] = _manifest_sum(manifest)
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    for p in tmp.iterdir():
        _fsync_file(p)
    fsync_dir(tmp)
    if final.exists():  # the same segment snapshotted twice (a retry): replace it
        shutil.rmtree(final)
    os.rename(tmp, final)
    fsync_dir(snap_dir)
    return final


def snapshot_numbers(snap_dir: Path) -> list[int]:
    """The numbers of the complete snapshots in ``snap_dir``, ascending."""
    if not snap_dir.is_dir():
        return []
    return sorted(int(p.name) for p in snap_dir.iterdir() if p.is_dir() and p.name.isdigit())


def read_snapshot(path: Path) -> Image:
    """Load one snapshot directory, checksums first; CorruptSnapshot when it is not one we wrote intact."""
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CorruptSnapshot(f"snapshot {path} has no readable {MANIFEST}: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") not in FORMATS:
        found = manifest.get("format") if isinstance(manifest, dict) else manifest
        raise CorruptSnapshot(f"snapshot {path} has format {found!r}, expected one of {FORMATS}")
    _verify(path, manifest)
    try:
        return _load(path, manifest)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:  # faiss raises RuntimeError
        raise CorruptSnapshot(f"snapshot {path} cannot be loaded: {exc}") from None


def _load(path: Path, manifest: dict[str, Any]) -> Image:
    dim = int(manifest["dim"])
    image = Image(int(manifest["covers"]), int(manifest["next_id"]), dim, str(manifest["embedder"]))
    for entry in manifest["namespaces"]:
        index = VectorIndex.read(path / f"{entry['file']}.faiss", dim)
        items: dict[int, tuple[str, dict[str, Any]]] = {}
        with open(path / f"{entry['file']}.items.jsonl", encoding="utf-8") as f:
            for line in f:
                item_id, text, meta = json.loads(line)
                items[int(item_id)] = (text, meta)
        if len(items) != len(index):
            raise ValueError(
                f"snapshot {path}: namespace {entry['name']!r} has {len(items)} items "
                f"but {len(index)} vectors"
            )
        image.namespaces[entry["name"]] = NamespaceImage(index, items)
    if (path / REQUESTS).exists():
        image.requests = {str(k): [int(i) for i in v]
                          for k, v in json.loads((path / REQUESTS).read_text(encoding="utf-8")).items()}
    return image


def snapshot_path(snap_dir: Path, number: int) -> Path:
    """The directory of snapshot ``number``."""
    return snap_dir / f"{number:08d}"


def set_aside(snap_dir: Path, number: int) -> None:
    """Rename corrupt snapshot ``number`` so it is never loaded again (the next prune removes it)."""
    src = snapshot_path(snap_dir, number)
    dst = snap_dir / f"{CORRUPT}{number:08d}"
    shutil.rmtree(dst, ignore_errors=True)
    os.rename(src, dst)


def prune(snap_dir: Path, keep: int) -> None:
    """Remove snapshots older than number ``keep`` and every leftover temp or corrupt directory."""
    if not snap_dir.is_dir():
        return
    for p in snap_dir.iterdir():
        stale = p.name.startswith(("tmp-", CORRUPT)) or (p.name.isdigit() and int(p.name) < keep)
        if p.is_dir() and stale:
            shutil.rmtree(p, ignore_errors=True)
