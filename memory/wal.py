"""The memory store's append-only log: checksummed records in numbered segments.

Contract:

* A record is ``[u32 length][u32 crc32(payload)][payload]`` (little endian).
  :meth:`Wal.append` writes whole records; :meth:`Wal.sync` flushes them to
  disk (``os.fsync``). The store acknowledges a change only after ``sync``
  returned, so an acknowledged change survives ``kill -9`` and power loss.
* The log lives in numbered segment files ``<dir>/<n:08d>.log``; :meth:`roll`
  closes the current segment and starts the next one (a snapshot then covers
  every segment up to the closed one, which it may delete).
* :func:`read_records` yields the payloads of the segments after a given
  number, in order. A record whose length or checksum does not match (a
  write torn by a crash) ends its segment: it and anything after it are
  ignored, and when it is in the last segment the file is truncated to the
  last good record so new appends are readable.
"""

from __future__ import annotations

import errno
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

_HEAD = struct.Struct("<II")
MAX_RECORD = 1 << 30  # a length beyond this is garbage, not a record
SUFFIX = ".log"


def fsync_dir(path: Path) -> None:
    """fsync a directory so a created, renamed or deleted entry in it is durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def segment_numbers(log_dir: Path) -> list[int]:
    """The numbers of the segment files in ``log_dir``, ascending."""
    out = []
    for p in log_dir.glob(f"*{SUFFIX}"):
        stem = p.name[: -len(SUFFIX)]
        if stem.isdigit():
            out.append(int(stem))
    return sorted(out)


def segment_path(log_dir: Path, number: int) -> Path:
    """The file of segment ``number``."""
    return log_dir / f"{number:08d}{SUFFIX}"


def frame(payload: bytes) -> bytes:
    """One record: length, checksum, payload."""
    return _HEAD.pack(len(payload), zlib.crc32(payload)) + payload


@dataclass
class Scan:
    """What :func:`scan_segment` found: the good payloads and where they end."""

    payloads: list[bytes]
    good_end: int
    size: int

    @property
    def torn(self) -> bool:
        return self.good_end < self.size


def scan_segment(path: Path) -> Scan:
    """Read every intact record of one segment, stopping at the first bad one."""
    data = path.read_bytes()
    payloads: list[bytes] = []
    pos = 0
    while pos + _HEAD.size <= len(data):
        length, crc = _HEAD.unpack_from(data, pos)
        start = pos + _HEAD.size
        end = start + length
        if length > MAX_RECORD or end > len(data):
            break
        payload = data[start:end]
        if zlib.crc32(payload) != crc:
            break
        payloads.append(payload)
        pos = end
    return Scan(payloads, pos, len(data))


def read_records(log_dir: Path, after: int, log=None) -> Iterator[bytes]:
    """Yield the payloads of every segment numbered above ``after``, in order.

    A torn or corrupt tail ends its segment; in the last segment the file is
    truncated to its last good record (a crash mid-write leaves exactly that).
    """
    numbers = [n for n in segment_numbers(log_dir) if n > after]
    for i, n in enumerate(numbers):
        path = segment_path(log_dir, n)
        scan = scan_segment(path)
        if scan.torn:
            last = i == len(numbers) - 1
            if log is not None:
                (log.warning if last else log.error)(
                    "log_tail_torn", segment=str(path), good_bytes=scan.good_end,
                    dropped_bytes=scan.size - scan.good_end, last_segment=last,
                )
            if last:
                _cut_tail(path, scan.good_end, log)
        yield from scan.payloads


def _cut_tail(path: Path, size: int, log=None) -> None:
    """Truncate a torn last segment; on a disk that refuses (read-only) leave it: nothing is appended then."""
    try:
        with open(path, "r+b") as f:
            f.truncate(size)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        if log is not None:
            log.error("log_tail_not_cut", segment=str(path), error=str(exc))


class Wal:
    """The writer of the log: appends to the newest segment of ``log_dir``."""

    def __init__(self, log_dir: str | os.PathLike[str], start: int = 1) -> None:
        self.dir = Path(log_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        numbers = segment_numbers(self.dir)
        self.segment = max(numbers[-1] if numbers else start, start)
        self._fd = -1
        self._broken: str = ""
        self._open(self.segment)
        self.records = 0  # appended since this writer opened its current segment
        self._dirty = False

    def _open(self, number: int) -> None:
        """Make segment ``number`` the one appended to (on an OSError nothing has changed)."""
        path = segment_path(self.dir, number)
        created = not path.exists()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            size = os.fstat(fd).st_size
            if created:
                fsync_dir(self.dir)  # the new file's entry must survive a crash too
        except OSError:
            os.close(fd)
            raise
        self._fd, self.bytes = fd, size
        self._synced = size  # bytes known to be on disk

    def append(self, payload: bytes) -> None:
        """Write one record (not yet durable: call :meth:`sync` before acknowledging).

        A failed write is cut off again (``ftruncate``) so no half record is
        left in front of later ones; if even that fails the log refuses
        further writes (OSError).
        """
        self._check_writable()
        view = memoryview(frame(payload))
        try:
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
        except OSError as exc:
            try:
                os.ftruncate(self._fd, self.bytes)
            except OSError:
                self._broken = f"a failed write could not be undone: {exc}"
            raise
        self.bytes += len(payload) + _HEAD.size
        self.records += 1
        self._dirty = True

    def sync(self) -> None:
        """Make every appended record durable (one fsync for the whole batch).

        After a failed fsync the kernel may have dropped the dirty pages, so
        the log refuses further writes rather than acknowledge on top of them;
        the records of the failed batch are cut off again (best effort), so
        a restart does not replay changes that were never acknowledged.
        """
        if self._dirty and self._fd >= 0:
            self._check_writable()
            try:
                os.fsync(self._fd)
            except OSError as exc:
                self._broken = f"fsync failed: {exc}"
                self._cut(self._synced)
                raise
            self._dirty = False
            self._synced = self.bytes

    def _cut(self, size: int) -> None:
        try:
            os.ftruncate(self._fd, size)
            self.bytes = size
        except OSError:
            pass  # the log is broken already: nothing more is written to it

    def _check_writable(self) -> None:
        if self._fd < 0:
            raise OSError(f"the memory log {self.dir} is closed")
        if self._broken:
            raise OSError(f"the memory log {self.dir} refuses writes: {self._broken}")

    def roll(self) -> int:
        """Sync and close the current segment, start the next; return the closed number."""
        self.sync()
        closed, old_fd = self.segment, self._fd
        self._open(closed + 1)  # a full disk raises here, and the current segment stays open
        os.close(old_fd)
        self.segment = closed + 1
        self.records = 0
        return closed

    def close(self) -> None:
        """Sync and close (idempotent). A failing sync is raised after the file is closed."""
        if self._fd >= 0:
            try:
                self.sync()
            finally:
                os.close(self._fd)
                self._fd = -1


class RefusingLog:
    """Stands in for :class:`Wal` when the log directory cannot be written at all (a read-only disk).

    Every write is refused with an OSError naming ``reason``; the store's
    reads go on. A restart on a writable disk opens a real :class:`Wal`.
    """

    records = 0

    def __init__(self, log_dir: Path, segment: int, reason: str) -> None:
        self.dir = Path(log_dir)
        self.segment = segment
        self.bytes = 0
        self.reason = reason

    def append(self, payload: bytes) -> None:
        raise OSError(errno.EROFS, f"the memory log {self.dir} cannot be written: {self.reason}")

    def sync(self) -> None:
        """Nothing was appended: nothing to sync."""

    def roll(self) -> int:
        raise OSError(errno.EROFS, f"the memory log {self.dir} cannot be written: {self.reason}")

    def close(self) -> None:
        """Nothing is open."""
