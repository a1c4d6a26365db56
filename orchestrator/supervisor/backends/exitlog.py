"""What a node's host tells the supervisor about its processes: exits in order, and adopted pids' ends.

:class:`ExitLog` numbers every exit; the supervisor long-polls for those
after its cursor (and so acknowledges the ones before). :class:`PidWatch`
learns of the end of processes that are not the host's children (adopted
after a restart: nobody can ``waitpid`` them) through a pidfd each, at once.
"""

from __future__ import annotations

import os
import select
import threading
from typing import Callable


class ExitLog:
    """Exits ``(seq, pid, code)`` in the order they happened; read with :meth:`after` (any thread)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._events: list[tuple[int, int, int | None]] = []
        self._seq = 0

    def add(self, pid: int, code: int | None) -> None:
        """Record that ``pid`` exited (``code``: exit code, -signal, or None when unknown)."""
        with self._cond:
            self._seq += 1
            self._events.append((self._seq, pid, code))
            self._cond.notify_all()

    def after(self, cursor: int, wait: float) -> list[tuple[int, int, int | None]]:
        """Exits numbered above ``cursor`` (waiting up to ``wait`` s for one); those up to it are dropped."""
        with self._cond:
            self._events = [e for e in self._events if e[0] > cursor]
            if not self._events and wait > 0:
                self._cond.wait(wait)
            return [e for e in self._events if e[0] > cursor]

    def wake(self) -> None:
        """End every wait now (the host is stopping)."""
        with self._cond:
            self._cond.notify_all()


class PidWatch:
    """Calls ``on_gone(pid)`` once when a watched process ends (pidfds, one poller thread)."""

    def __init__(self, on_gone: Callable[[int], None]) -> None:
        self._on_gone = on_gone
        self._fds: dict[int, int] = {}  # fd -> pid
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        self._poll = select.poll()
        self._poll.register(self._wake_r, select.POLLIN)
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="pid-watch", daemon=True)
        self._thread.start()

    def watch(self, pid: int) -> bool:
        """Watch ``pid``; False when it is already gone (then ``on_gone`` is not called)."""
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            return False
        with self._lock:
            self._fds[fd] = pid
            self._poll.register(fd, select.POLLIN)
        os.write(self._wake_w, b"w")
        return True

    def _run(self) -> None:
        while not self._closed:
            for fd, _ in self._poll.poll():
                if fd == self._wake_r:
                    os.read(self._wake_r, 4096)
                    continue
                with self._lock:
                    pid = self._fds.pop(fd, None)
                    self._poll.unregister(fd)
                os.close(fd)
                if pid is not None:
                    self._on_gone(pid)

    def close(self) -> None:
        """Stop watching (idempotent)."""
        if self._closed:
            return
        self._closed = True
        os.write(self._wake_w, b"x")
        self._thread.join(timeout=2)
        with self._lock:
            for fd in self._fds:
                os.close(fd)
            self._fds.clear()
        os.close(self._wake_r)
        os.close(self._wake_w)
