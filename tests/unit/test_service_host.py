"""The service host with fake ports: signal → intent → ordered stop, escalation, errors, crashes."""

from __future__ import annotations

import io
import json
import signal
import threading
from typing import Any, Callable

import pytest
import structlog

from bus.host import Hosted, HostSpec, ServiceHost
from bus.host.args import host_parser, host_spec
from swarm_core.errors import ConfigError, ProviderError

pytestmark = pytest.mark.timeout(30)


def send_signal(sig: int) -> Callable[[], None]:
    """An action delivering ``sig`` to this (the main) thread, as the kernel would to the process."""
    return lambda: signal.pthread_kill(threading.get_ident(), sig)


class RecordingLog:
    """A structlog-shaped logger port that keeps every event."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    def __getattr__(self, level: str) -> Callable[..., None]:
        return lambda event, **fields: self.events.append((level, event, fields))

    def named(self, event: str) -> list[dict[str, Any]]:
        return [f for _, e, f in self.events if e == event]


class FakeClient:
    """The bus-client port: records what the host does with it; ``actions[n]`` runs at the n-th poll."""

    def __init__(self, actions: dict[int, Callable[[], None]] | None = None) -> None:
        self.events: list[str] = []
        self.polls = 0
        self._actions = actions or {}

    def connect(self) -> "FakeClient":
        self.events.append("connect")
        return self

    def poll(self, timeout: float = 0.0, until: Callable[[], bool] | None = None) -> None:
        self.polls += 1
        self.events.append("poll")
        action = self._actions.get(self.polls)
        if action is not None:
            action()

    def close(self, bye: bool = True) -> None:
        self.events.append(f"close(bye={bye})")


class FakeService(Hosted):
    """A hosted service recording which hooks ran, in order."""

    def __init__(self, client: FakeClient | None, *, serve_code: int | None = None,
                 on_tick: Callable[[int], None] | None = None, on_start: Callable[[], None] | None = None,
                 drain_polls: int = 0, busy_after_close: bool = False) -> None:
        self.client = client
        self.calls: list[str] = []
        self.ticks = 0
        self.hurried: bool | None = None
        self._serve_code = serve_code
        self._on_tick = on_tick
        self._on_start = on_start
        self._drain_polls = drain_polls
        self._busy_after_close = busy_after_close

    def start(self) -> None:
        self.calls.append("start")
        if self._on_start is not None:
            self._on_start()

    def serve(self) -> int | None:
        if self._serve_code is not None:
            self.calls.append("serve")
        return self._serve_code

    def tick(self) -> None:
        self.ticks += 1
        if "tick" not in self.calls:
            self.calls.append("tick")
        if self._on_tick is not None:
            self._on_tick(self.ticks)

    def escalate(self) -> None:
        self.calls.append("escalate")

    def stop_accepting(self) -> None:
        self.calls.append("stop_accepting")

    def drain(self, deadline: float, hurry: Callable[[], bool]) -> None:
        self.calls.append("drain")
        for _ in range(self._drain_polls):
            if hurry():
                break
            self.client.poll(0.01)  # type: ignore[union-attr]
        self.hurried = hurry()

    def close(self) -> None:
        self.calls.append("close")
        self.busy = self._busy_after_close

    def kill(self) -> None:
        self.calls.append("kill")


class Rig:
    """A host over fake ports; ``run(service_factory)`` returns the exit code."""

    def __init__(self, tmp_path: Any, actions: dict[int, Callable[[], None]] | None = None,
                 log: Any = "fake", identity: str = "svc") -> None:
        self.client = FakeClient(actions)
        self.log = RecordingLog() if log == "fake" else log
        self.stderr = io.StringIO()
        self.exits: list[int] = []
        self.host = ServiceHost(HostSpec(role="test", run_dir=tmp_path, identity=identity, tick=0.01),
                                log=self.log, make_client=lambda: self.client, stderr=self.stderr,
                                exit_now=self.exits.append)
        self.service: FakeService | None = None

    def run(self, make: Callable[[FakeClient], FakeService]) -> int:
        def build(host: ServiceHost) -> FakeService:
            self.service = make(host.client)
            return self.service

        return self.host.run(build)


def test_a_signal_records_the_intent_and_the_loop_stops_in_order(tmp_path) -> None:
    """SIGTERM becomes the service's stop reason; the loop ends and the stop runs in its order."""
    before = signal.getsignal(signal.SIGTERM)
    rig = Rig(tmp_path, {3: send_signal(signal.SIGTERM)})
    assert rig.run(FakeService) == 0
    svc = rig.service
    assert svc.stop_reason == "sigterm" and svc.ticks == 3
    assert svc.calls == ["start", "tick", "stop_accepting", "drain", "close"]
    assert svc.hurried is False
    assert rig.client.events == ["connect", "poll", "poll", "poll", "close(bye=True)"]
    assert [e for _, e, _ in rig.log.events] == ["service_stopping", "service_stopped"]
    assert rig.log.named("service_stopping")[0] == {"reason": "sigterm", "escalated": False}
    assert signal.getsignal(signal.SIGTERM) is before  # the host put the old handler back
    assert rig.stderr.getvalue() == "" and rig.exits == []


def test_a_second_signal_escalates_the_stop(tmp_path) -> None:
    """A second signal during the drain makes hurry() true and calls escalate; the stop goes on in order."""
    rig = Rig(tmp_path, {1: send_signal(signal.SIGINT), 3: send_signal(signal.SIGTERM)})
    assert rig.run(lambda c: FakeService(c, drain_polls=50)) == 0
    svc = rig.service
    assert svc.stop_reason == "sigint" and svc.hurried is True
    assert svc.calls == ["start", "tick", "stop_accepting", "drain", "escalate", "close"]
    assert rig.client.polls == 3  # the drain stopped polling at the second signal
    assert rig.client.events[-1] == "close(bye=True)"


def test_a_stop_the_service_asks_for_itself_ends_the_loop(tmp_path) -> None:
    """A stop reason the service sets itself (a Stop message) ends the loop like a signal does."""

    def stop_at_two(svc_ref: list) -> Callable[[int], None]:
        return lambda n: n == 2 and svc_ref[0].request_stop("test over")

    ref: list = []
    rig = Rig(tmp_path)
    code = rig.run(lambda c: ref.append(FakeService(c, on_tick=stop_at_two(ref))) or ref[0])
    assert code == 0 and rig.service.stop_reason == "test over" and rig.service.ticks == 2
    assert rig.service.calls[-3:] == ["stop_accepting", "drain", "close"]


def test_a_setup_error_is_one_line_on_stderr_and_its_exit_code(tmp_path) -> None:
    """A SwarmError while building the service is one stderr line and its exit code; nothing connects."""

    def broken(client: FakeClient) -> FakeService:
        raise ConfigError("swarm.yaml: llm.provider: unknown provider 'x'", file="swarm.yaml")

    rig = Rig(tmp_path)
    assert rig.run(broken) == 2
    assert rig.stderr.getvalue() == "error: swarm.yaml: llm.provider: unknown provider 'x'\n"
    assert rig.client.events == ["close(bye=False)"]
    assert rig.log.named("service_setup_failed") == [
        {"code": "config_invalid", "error": "swarm.yaml: llm.provider: unknown provider 'x'"}]


def test_a_start_error_stops_what_started_and_exits_with_its_code(tmp_path) -> None:
    """A SwarmError from start() runs the ordered stop, then is one stderr line and its exit code."""

    def refuse() -> None:
        raise ProviderError("openai: no API key in SWARM_TEST_KEY")

    rig = Rig(tmp_path)
    assert rig.run(lambda c: FakeService(c, on_start=refuse)) == 7
    assert rig.service.calls == ["start", "stop_accepting", "drain", "close"]
    assert rig.client.events == ["connect", "close(bye=True)"]
    assert rig.stderr.getvalue().splitlines() == ["error: openai: no API key in SWARM_TEST_KEY"]


def _explode(n: int) -> None:
    raise RuntimeError(f"boom at tick {n}")


def test_an_unexpected_exception_is_logged_with_its_traceback_and_exits_70(tmp_path) -> None:
    """A bug at the process boundary: the traceback is in the JSON log, kill runs, exit code 70."""
    try:
        rig = Rig(tmp_path, log=None)  # the real structlog set-up, writing logs/svc.jsonl
        assert rig.run(lambda c: FakeService(c, on_tick=_explode)) == 70
    finally:
        structlog.reset_defaults()
    assert rig.service.calls == ["start", "tick", "kill"]
    assert rig.client.events == ["connect", "poll", "close(bye=False)"]
    lines = [json.loads(ln) for ln in (tmp_path / "logs" / "svc.jsonl").read_text().splitlines()]
    crash = [e for e in lines if e["event"] == "service_crashed"]
    assert len(crash) == 1 and crash[0]["role"] == "test" and crash[0]["level"] == "error"
    assert "Traceback" in crash[0]["exception"] and "in _explode" in crash[0]["exception"]
    assert "RuntimeError: boom at tick 1" in crash[0]["exception"]
    out = rig.stderr.getvalue().splitlines()
    assert len(out) == 1 and "RuntimeError: boom at tick 1" in out[0] and "svc.jsonl" in out[0]


def test_a_memory_error_is_left_to_the_caller(tmp_path) -> None:
    """A MemoryError passes the host unchanged (the zygote turns it into its own exit code)."""

    def exhaust(n: int) -> None:
        raise MemoryError

    rig = Rig(tmp_path)
    with pytest.raises(MemoryError):
        rig.run(lambda c: FakeService(c, on_tick=exhaust))


def test_a_service_with_its_own_loop_gives_the_exit_code(tmp_path) -> None:
    """serve() replaces the host's loop; its exit code is the process's, after the ordered stop."""
    rig = Rig(tmp_path)
    assert rig.run(lambda c: FakeService(c, serve_code=3)) == 3
    assert rig.service.calls == ["start", "serve", "stop_accepting", "drain", "close"]
    assert rig.client.events == ["connect", "close(bye=True)"]


def test_a_signal_during_set_up_is_passed_on_when_the_service_exists(tmp_path) -> None:
    """A signal that comes while the service is built stops it before its first tick."""

    def build_slowly(client: FakeClient) -> FakeService:
        send_signal(signal.SIGTERM)()
        return FakeService(client)

    rig = Rig(tmp_path)
    assert rig.run(build_slowly) == 0
    assert rig.service.stop_reason == "sigterm" and rig.service.ticks == 0


def test_work_left_on_threads_makes_the_process_exit_at_once(tmp_path) -> None:
    """A service still busy after its stop makes the host exit without waiting for its threads."""
    rig = Rig(tmp_path, {1: send_signal(signal.SIGTERM)})
    rig.run(lambda c: FakeService(c, busy_after_close=True))
    assert rig.exits == [0]


def test_a_process_without_a_bus_identity_gets_no_client(tmp_path) -> None:
    """With no identity the host makes no bus client; the service must run its own loop."""
    rig = Rig(tmp_path, identity="")
    assert rig.run(lambda c: FakeService(c, serve_code=0)) == 0
    assert rig.service.client is None and rig.client.events == []


def test_shared_options_give_the_host_spec(tmp_path) -> None:
    """The shared options parse into a HostSpec: resolved run dir, default identity, endpoint, credential."""
    args = host_parser("prog", "desc", identity="memory").parse_args(
        ["--run-dir", str(tmp_path / "x" / ".." / "run"), "--heartbeat", "0.5", "--credential", "-"])
    spec = host_spec(args, "memory", tick=0.2)
    assert spec.run_dir == (tmp_path / "run").resolve() and spec.identity == "memory"
    assert spec.endpoint == "" and spec.heartbeat_interval == 0.5 and spec.tick == 0.2
    assert spec.credential == "-"  # read by the host at set-up (a read error is then one line, not a crash)
