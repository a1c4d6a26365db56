"""The supervisor's main in the service host, over a fake Supervisor: signals, escalation, teardown once."""

from __future__ import annotations

import io
import signal
import threading

import pytest

from bus.host import HostSpec, ServiceHost
from orchestrator.supervisor.__main__ import SupervisorHosting
from swarm_core.errors import SwarmError

pytestmark = pytest.mark.timeout(30)


class NullLog:
    def __getattr__(self, name):
        return lambda *a, **k: None


class FakeSupervisor:
    """Records the main's calls; ``run`` delivers the given signals, then tears down as the real one does."""

    def __init__(self, signals=(), fail_start: SwarmError | None = None) -> None:
        self.calls: list[str] = []
        self.shutdown: str | None = None
        self.hard = False
        self._signals = signals
        self._fail_start = fail_start

    def request_shutdown(self, reason: str) -> None:
        self.calls.append(f"request_shutdown({reason})")
        self.shutdown = self.shutdown or reason

    def start(self) -> None:
        self.calls.append("start")
        if self._fail_start is not None:
            raise self._fail_start

    def run(self) -> None:
        self.calls.append("run")
        for sig in self._signals:
            signal.pthread_kill(threading.get_ident(), sig)
        self.teardown()

    def escalate(self) -> None:
        self.hard = True

    def teardown(self) -> None:
        self.calls.append("teardown")


def _host(tmp_path, stderr=None) -> ServiceHost:
    return ServiceHost(HostSpec(role="supervisor", run_dir=tmp_path), log=NullLog(),
                       stderr=stderr or io.StringIO())


def test_signals_reach_the_supervisor_and_a_second_one_makes_every_stop_a_kill(tmp_path) -> None:
    """SIGTERM asks the supervisor to shut down; a second signal sets its hard flag; teardown runs once."""
    sup = FakeSupervisor(signals=(signal.SIGTERM, signal.SIGINT))
    assert _host(tmp_path).run(lambda h: SupervisorHosting(sup)) == 0
    assert sup.calls == ["start", "run", "request_shutdown(sigterm)", "teardown"]
    assert sup.hard is True


def test_a_failed_start_is_torn_down_once_and_exits_with_its_code(tmp_path) -> None:
    """A SwarmError from start() shuts the supervisor down, tears it down once, one stderr line, its code."""
    err = io.StringIO()
    sup = FakeSupervisor(fail_start=SwarmError("the gateway service did not come up within 600s"))
    assert _host(tmp_path, err).run(lambda h: SupervisorHosting(sup)) == 1
    assert sup.calls == ["start", "request_shutdown(start_failed)", "teardown"]
    assert err.getvalue() == "error: the gateway service did not come up within 600s\n"
