"""limits.workspace_mb holds for a real swarm: file commands are refused past it, and the kernel stops
executed code at it (a tmpfs of that size), while the real workspace stays intact and within it."""

from __future__ import annotations

import os

import pytest

from tests.system.conftest import base_config, cmd

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

MB = 1 << 20
FILL = """
import os
written = 0
try:
    for i in range(20):
        with open(f"fill-{i}.bin", "wb") as f:
            f.write(os.urandom(1 << 20))
        written += 1
except OSError as exc:
    print(f"stopped: {exc.strerror} after {written} files")
    raise SystemExit(3)
print(f"wrote all {written} files")
"""


def usage(folder) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def test_executed_code_and_file_commands_stop_at_the_workspace_limit(swarm):
    """Code writing 20 MB into a 4 MB workspace gets 'No space left on device'; what it wrote comes back
    within the limit, the file already there is intact; a write_to_file past the limit is refused."""
    cfg = base_config(limits={"workspace_mb": 4}, safety={"sandbox": "kernel"},
                      tools={"exec_wall_seconds": 60})
    cfg["agents"]["coder"] = {"role": "a coder", "commands": ["write_to_file", "execute_python_file",
                                                             "task_complete"]}
    cfg["agents"]["manager"]["can_start"] = ["coder"]
    cas = {"manager": {"responses": [cmd("start_agent", name="w", task="fill", role="coder"),
                                     cmd("do_nothing")], "repeat": True},
           "w": [cmd("write_to_file", file="fill.py", text=FILL), cmd("execute_python_file", file="fill.py"),
                 cmd("write_to_file", file="more.txt", text="m" * 50_000),
                 cmd("task_complete", reason="filled")]}
    run = swarm(cfg, cas)
    run.workspace.mkdir(parents=True, exist_ok=True)
    (run.workspace / "keep.txt").write_text("precious")
    run.up()
    run.wait_for(lambda a: a.get("w", {}).get("status") == "done", timeout=120, what="w done")
    done = {e["step"]: e for e in run.log_events("w") if e.get("event") == "command_done"}
    executed, refused = done[2], done[3]
    assert executed["command"] == "execute_python_file" and not executed["ok"]
    assert "stopped: No space left on device after" in executed["result"]
    assert "wrote all" not in executed["result"]
    assert not refused["ok"] and "limits.workspace_mb" in refused["result"]
    assert (run.workspace / "keep.txt").read_text() == "precious"
    assert 1 <= len(list(run.workspace.glob("fill-*.bin"))) <= 4
    assert usage(run.workspace) <= 4 * MB
    assert not (run.workspace / "more.txt").exists()
    assert os.path.getsize(run.workspace / "fill-0.bin") == MB
