"""Signals record an intent; the loop acts on it (one idiom for every process).

SIGTERM and SIGINT mean the same: the first asks for the ordered stop, a
second one escalates (the stop stops waiting). The handler,
:meth:`StopIntent.on_signal`, only records: it counts the signal and hands
its name to the bound service's ``request_stop`` or calls its ``escalate``,
both of which only record too. Nothing else runs in signal context.
"""

from __future__ import annotations

import signal
from typing import Any, Callable, Iterable


class StopIntent:
    """What the process's signals asked for."""

    def __init__(self) -> None:
        self.signals = 0
        self.reason = ""
        self._service: Any = None

    @property
    def escalated(self) -> bool:
        """Whether a second signal came (the stop must not wait any more)."""
        return self.signals > 1

    def on_signal(self, signum: int, frame: object = None) -> None:
        """The signal handler: record, pass the intent on to the service, nothing more."""
        self.signals += 1
        service = self._service
        if self.signals == 1:
            self.reason = signal.Signals(signum).name.lower()
            if service is not None:
                service.request_stop(self.reason)
        elif service is not None:
            service.escalate()

    def bind(self, service: Any) -> None:
        """From now on pass intents to ``service``; pass on those that came before."""
        self._service = service
        if self.reason:
            service.request_stop(self.reason)
        if self.escalated:
            service.escalate()

    def install(self, signals: Iterable[int]) -> Callable[[], None]:
        """Make ``on_signal`` the handler of ``signals``; return a function restoring the old ones."""
        previous = {sig: signal.signal(sig, self.on_signal) for sig in signals}

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore
