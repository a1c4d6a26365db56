"""Point-in-time copies of the memory store, written atomically.

Contract:

* A snapshot is a directory ``<dir>/<n:08d>/`` where ``n`` is the last log
  segment it covers. It holds ``manifest.json`` and, per namespace, a FAISS
  index (``ns-<i>.faiss``) and its items (``ns-<i>.items.jsonl``: one
  ``[id, text, metadata]`` per line).
* :func:`write_snapshot` writes everything into ``tmp-<n>``, fsyncs every
  file and the directory, then renames it to ``<n>`` and fsyncs the parent:
  a snapshot directory with a number for a name is always complete.
* :func:`latest_snapshot` loads the highest-numbered one; :func:`prune`
  removes older snapshots and leftover temp directories.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memory.index import VectorIndex
from memory.wal import fsync_dir

MANIFEST = "manifest.json"
FORMAT = 1


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


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
    manifest = {
        "format": FORMAT, "covers": image.covers, "next_id": image.next_id,
        "dim": image.dim, "embedder": image.embedder, "namespaces": entries,
    }
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
    """Load one snapshot directory; ValueError when it is not one we wrote."""
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"snapshot {path} has no readable {MANIFEST}: {exc}") from None
    if manifest.get("format") != FORMAT:
        raise ValueError(f"snapshot {path} has format {manifest.get('format')!r}, expected {FORMAT}")
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
    return image


def latest_snapshot(snap_dir: Path) -> Image | None:
    """The newest complete snapshot, or None when there is none."""
    numbers = snapshot_numbers(snap_dir)
    return read_snapshot(snap_dir / f"{numbers[-1]:08d}") if numbers else None


def prune(snap_dir: Path, keep: int) -> None:
    """Remove snapshots older than number ``keep`` and every leftover temp directory."""
    if not snap_dir.is_dir():
        return
    for p in snap_dir.iterdir():
        if p.is_dir() and (p.name.startswith("tmp-") or (p.name.isdigit() and int(p.name) < keep)):
            shutil.rmtree(p, ignore_errors=True)
