"""The hooks a service gives the host, each with a do-nothing default."""

from __future__ import annotations

from typing import Any, Callable


class Hosted:
    """A service as the :class:`~bus.host.runner.ServiceHost` drives it.

    The host calls the hooks in this order: ``start``; then ``serve`` once
    (a service with its own loop) or, while ``stop_reason`` is empty,
    ``tick`` after each poll of the bus client; then the ordered stop:
    ``stop_accepting``, ``drain``, ``close``. After an unexpected exception
    ``kill`` runs instead of the stop. ``request_stop`` and ``escalate`` may
    be called from a signal handler: they only record.

    ``stop_reason`` is truthy once the service was asked to stop (by a
    signal through ``request_stop``, or by a message it handles); ``busy``
    says that the stop left work running on threads the process must not
    wait for (the host then exits at once).
    """

    stop_reason: Any = ""
    busy: bool = False

    def request_stop(self, reason: str) -> None:
        """Record the intent to stop (signal-safe); the loop acts on it."""
        if not self.stop_reason:
            self.stop_reason = reason or "stopped"

    def escalate(self) -> None:
        """A second signal came: the stop must not wait any more (signal-safe: record only)."""

    def start(self) -> None:
        """Begin serving; the bus client (if any) is connected."""

    def serve(self) -> int | None:
        """Run the service's own loop to its end and return the exit code; None: the host loops."""
        return None

    def tick(self) -> None:
        """Work of one pass of the host's loop (after each poll of the bus client)."""

    def stop_accepting(self) -> None:
        """Refuse new work from now on."""

    def drain(self, deadline: float, hurry: Callable[[], bool]) -> None:
        """Let work in flight finish, until ``deadline`` (``time.monotonic``) or ``hurry()``."""

    def close(self) -> None:
        """The service's own stop: release what it holds (the bus client is still open)."""

    def kill(self) -> None:
        """After a crash: stop at once, keep what is safe, wait for nothing (idempotent)."""
