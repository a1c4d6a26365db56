"""Tracing cost per agent step: the same replay agent with tracing on and off (OTEL_SDK_DISABLED), same run.

One agent runs N cheap steps (write_to_file with fresh arguments each
time); a step's time is the gap between consecutive ``step_decided`` log
events. Rounds alternate off/on so drift on a shared machine hits both.
Prints p50 per step for each, the difference (the cost of tracing: spans
recorded in the agent and the gateway, sent to the supervisor, exported to
RUN_DIR/traces.jsonl) and the ratio on/off.
"""

from __future__ import annotations

import os

from _swarmkit import BenchSwarm, cmd, percentile

N = 150
ROUNDS = 5


def one_run(tracing: bool) -> list[float]:
    steps = [cmd("write_to_file", file=f"f{i}.txt", text="x") for i in range(N)]
    cassette = {"manager": steps + [cmd("task_complete", reason="done")]}
    extra = {"workspace": "workspace", "agents": {"manager": {
        "role": "m", "commands": ["write_to_file", "task_complete"]}}}
    # the flood gate would throttle a replay agent this fast: lift it to time the steps themselves
    sw = BenchSwarm(cassette, extra=extra, limits={"max_steps": N + 10, "loop_threshold": N + 10,
                                                   "loop_window": N + 10, "bus_messages_per_second": 100_000})
    if tracing:
        sw.env.pop("OTEL_SDK_DISABLED", None)
    else:
        sw.env["OTEL_SDK_DISABLED"] = "true"
    try:
        sw.up()
        agents = sw.wait_for(lambda a: a.get("manager", {}).get("status") not in ("starting", "running", "waiting"),
                             300, "the agent's steps")
        events = sw.log_events("manager")
        spans = (sw.run_dir / "traces.jsonl").exists()
    finally:
        sw.close()
    if agents["manager"]["status"] != "done":
        raise SystemExit(f"the agent ended {agents['manager']['status']}: {agents['manager']['reason']}")
    if spans != tracing:
        raise SystemExit(f"tracing={tracing} but traces.jsonl {'exists' if spans else 'is missing'}")
    ts = [e["ts"] for e in events if e.get("event") == "step_decided"]
    return [b - a for a, b in zip(ts, ts[1:])]


def main() -> None:
    off: list[float] = []
    on: list[float] = []
    for _ in range(ROUNDS):
        off += one_run(False)
        on += one_run(True)
    p_off, p_on = percentile(off, 50), percentile(on, 50)
    print(f"tracing cost per step: {len(off)} steps off, {len(on)} steps on, {ROUNDS} alternating rounds")
    print(f"  tracing off (OTEL_SDK_DISABLED=true): p50 {p_off * 1e3:6.2f} ms/step  p90 "
          f"{percentile(off, 90) * 1e3:6.2f} ms")
    print(f"  tracing on (file export):             p50 {p_on * 1e3:6.2f} ms/step  p90 "
          f"{percentile(on, 90) * 1e3:6.2f} ms")
    print(f"  cost p50 {(p_on - p_off) * 1e6:+.0f} µs/step; ratio on/off = {p_on / p_off:.2f}")


if __name__ == "__main__":
    os.environ.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)  # file export only: no collector here
    main()
