"""The service host: set up, serve, stop in order, with one exit-code policy.

The order, written once (nameko's ``ServiceContainer.stop`` is the model):

1. **Set up**: structlog (role, agent id, ``<run_dir>/logs/<name>.jsonl``);
   the signal handlers (``intent.py``); the bus client, when the process is
   a peer (``identity`` set), in a zmq context of its own, presenting the
   process's ``credential`` (``bus.credentials``: an agent's comes in its
   spec, a service's on its stdin); then the main's ``build(host)`` makes
   the service.
2. **Start**: connect the client, then ``service.start()``.
3. **Serve**: ``service.serve()`` when the service runs its own loop; else
   poll the client for up to ``tick`` seconds and call ``service.tick()``,
   until ``service.stop_reason`` is set (by a message it handles, or by a
   signal through ``request_stop``).
4. **Stop**, ordered and bounded: ``stop_accepting()``;
   ``drain(now + drain_seconds, hurry)`` where ``hurry()`` is true once a
   second signal came; ``close()`` (the service's own stop); close the bus
   client (Bye, linger 0); terminate the context.

Exit codes: what ``serve()`` returned, else 0. A SwarmError (at set-up or
later) is logged, written as one line ``error: <message>`` on stderr, and
exits with its ``exit_code`` after the stop of whatever had started. Any
other exception is logged with its traceback (``service_crashed``), named
in one line on stderr, ``kill()`` runs instead of the stop (the client
closes without Bye) and the exit code is 70. A MemoryError is not handled
here: the caller (the zygote) reports it by its own exit code. When the
stop left work running on threads (``service.busy``) the process exits at
once (``os._exit``) instead of waiting for them.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable

import zmq

from bus.client import BusClient
from bus.credentials import read_credential
from bus.host.hosted import Hosted
from bus.host.intent import StopIntent
from bus.sockets import ipc_endpoint
from swarm_core import log as swarm_log
from swarm_core.defaults import HEARTBEAT_INTERVAL, LIVENESS
from swarm_core.errors import ConfigError, InternalError, SwarmError

SIGNALS = (signal.SIGTERM, signal.SIGINT)


@dataclass(frozen=True)
class HostSpec:
    """What a main tells the host about its process."""

    role: str  # bound on every log event
    run_dir: Path  # logs live under it
    identity: str = ""  # the peer id on the bus; empty: the host makes no bus client
    credential: Any = None  # what the client presents: a Credential, or a file holding one ("-": stdin)
    endpoint: str = ""  # the broker; empty: the run dir's bus socket
    agent_id: str = ""  # bound on every log event
    name: str = ""  # the log file's name; empty: the identity, else the role
    heartbeat_interval: float = HEARTBEAT_INTERVAL
    liveness: int = LIVENESS
    tick: float = 0.1  # the longest wait of one pass of the host's loop, seconds
    drain_seconds: float = 5.0  # the longest drain of the ordered stop


class ServiceHost:
    """Runs one service through set-up, start, serve and the ordered stop (see the module doc).

    ``log``, ``client`` and ``intent`` are there for the main's ``build``
    to hand to its service. The other arguments are ports for tests.
    """

    def __init__(self, spec: HostSpec, *, log: Any = None, make_client: Callable[[], Any] | None = None,
                 signals: tuple[int, ...] = SIGNALS, clock: Callable[[], float] = time.monotonic,
                 stderr: IO[str] | None = None, exit_now: Callable[[int], None] = os._exit) -> None:
        self.spec = spec
        self.log_name = spec.name or spec.identity or spec.role
        self.log = log if log is not None else swarm_log.configure(
            role=spec.role, agent_id=spec.agent_id, run_dir=spec.run_dir, name=self.log_name)
        self.intent = StopIntent()
        self.client: Any = None
        self.service: Hosted | None = None
        self._make_client = make_client or self._bus_client
        self._context: Any = None
        self._signals = signals
        self._clock = clock
        self._stderr = stderr
        self._exit_now = exit_now

    # ------------------------------------------------------------- the run

    def run(self, build: Callable[["ServiceHost"], Hosted]) -> int:
        """Set up, serve and stop the service ``build(self)`` makes; return the exit code."""
        restore = self.intent.install(self._signals)
        try:
            code = self._run(build)
        except MemoryError:
            raise
        except Exception as exc:  # the process boundary: log the traceback, kill, exit 70
            code = self._crashed(exc)
        finally:
            restore()
        if self.service is not None and self.service.busy:
            # threads the stop could not end (a provider call cannot be interrupted)
            self._flush()
            self._exit_now(code)
        return code

    def _run(self, build: Callable[["ServiceHost"], Hosted]) -> int:
        try:
            if self.spec.identity:
                self.client = self._make_client()
            service = self.service = build(self)
        except SwarmError as err:
            self._close_transport(bye=False)
            return self._refused(err, "service_setup_failed")
        self.intent.bind(service)
        phase = "start"
        try:
            if self.client is not None:
                self.client.connect()
            service.start()
            phase = "serve"
            code = self._serve(service)
        except SwarmError as err:
            service.request_stop(f"{phase}_failed")
            self._stop(service)
            return self._refused(err, f"service_{phase}_failed")
        self._stop(service)
        return code

    def _serve(self, service: Hosted) -> int:
        code = service.serve()
        if code is not None:
            return code
        client = self.client
        if client is None:
            raise InternalError(f"{self.spec.role}: a service without a loop of its own needs a bus identity")
        tick = self.spec.tick

        def stopping() -> bool:
            return bool(service.stop_reason)

        while not service.stop_reason:
            client.poll(tick, until=stopping)
            service.tick()
        return 0

    def _stop(self, service: Hosted) -> None:
        """Ordered and bounded: stop accepting, drain, the service's own stop, then the transport."""
        self.log.info("service_stopping", reason=str(service.stop_reason or self.intent.reason),
                      escalated=self.intent.escalated)
        try:
            service.stop_accepting()
            service.drain(self._clock() + self.spec.drain_seconds, lambda: self.intent.escalated)
            service.close()
        finally:
            self._close_transport(bye=True)
        self.log.info("service_stopped")

    # ------------------------------------------------------------ failures

    def _refused(self, err: SwarmError, event: str) -> int:
        self.log.error(event, code=err.code, error=str(err))
        self._say(f"error: {err}")
        return err.exit_code

    def _crashed(self, exc: Exception) -> int:
        self.log.error("service_crashed", error=f"{type(exc).__name__}: {exc}", exc_info=exc)
        where = swarm_log.log_path(self.spec.run_dir, self.log_name)
        self._say(f"error: internal error: {type(exc).__name__}: {exc} (traceback in {where})")
        if self.service is not None:
            try:
                self.service.kill()
            except Exception as kill_exc:  # noqa: BLE001 - kill survives parts that fail
                self.log.error("service_kill_failed", exc_info=kill_exc)
        try:
            self._close_transport(bye=False)
        except Exception as close_exc:  # noqa: BLE001 - we are exiting regardless
            self.log.error("transport_close_failed", exc_info=close_exc)
        return InternalError.exit_code

    # ----------------------------------------------------------- transport

    def _bus_client(self) -> Any:
        """A BusClient of our own context, presenting the process's credential."""
        spec = self.spec
        if spec.credential is None:
            raise ConfigError(f"{spec.role}: a bus peer needs a credential (the supervisor issues it)",
                              field="credential")
        credential = spec.credential
        if isinstance(credential, (str, Path)):
            credential = read_credential(credential)
        endpoint = spec.endpoint or ipc_endpoint(spec.run_dir, "bus")
        self._context = zmq.Context()
        return BusClient(endpoint, spec.identity, context=self._context, log=self.log,
                         credential=credential, heartbeat_interval=spec.heartbeat_interval,
                         liveness=spec.liveness)

    def _close_transport(self, bye: bool) -> None:
        """Close the client (linger 0; Bye unless ``bye`` is false) and terminate its context."""
        if self.client is not None:
            self.client.close(bye=bye)
        context, self._context = self._context, None
        if context is not None:
            context.term()  # the client's sockets are its only ones, closed: this returns at once

    def _say(self, line: str) -> None:
        stream = self._stderr or sys.stderr
        stream.write(line + "\n")
        stream.flush()

    def _flush(self) -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
