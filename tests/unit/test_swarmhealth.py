"""The ps header tells the truth about the supervisor and its helper processes (no processes: fakes)."""

from __future__ import annotations

from orchestrator.swarmhealth import header, service_lines, supervisor_line


def meta_of(values: dict):
    return lambda key, default=None: values.get(key, default)


def test_supervisor_up_down_and_dead():
    """Up while its pid runs it; down (with its reason) after a shutdown; dead when its pid died unstopped."""
    running = meta_of({"state": "running", "supervisor_pid": 41})
    assert supervisor_line(running, 41) == "supervisor up (pid 41)"
    assert supervisor_line(meta_of({"state": "down", "down_reason": "operator"}), None) == \
        "supervisor down (operator)"
    dead = supervisor_line(running, None)
    assert dead.startswith("supervisor dead (pid 41 ended without shutting down") and "(running)" not in dead


def test_services_show_their_state_and_dead_pids():
    """Each helper shows up / restarting / given up with its reason; an up one whose pid is gone is dead."""
    board = {"services": {
        "gateway": {"state": "up", "pid": 10, "reason": "", "restarts": 1},
        "memory": {"state": "given_up", "pid": 11, "reason": "exit code 2; restarted 3 times already",
                   "restarts": 3},
        "zygote": {"state": "restarting", "pid": 12, "reason": "SIGKILL", "restarts": 1},
    }}
    lines = service_lines(meta_of(board), alive=lambda pid: pid != 10)
    assert lines == ["gateway dead (pid 10 is gone)",
                     "memory given up (exit code 2; restarted 3 times already)",
                     "zygote restarting (pid 12; restarted 1x; SIGKILL)"]


def test_header_names_the_swarm_first():
    """The header starts with the swarm's name, then the supervisor, then the helpers."""
    text = header("demo", meta_of({"state": "running", "supervisor_pid": 5, "services": {
        "gateway": {"state": "up", "pid": 6}}}), 5, alive=lambda pid: True)
    assert text.splitlines() == ["swarm demo", "supervisor up (pid 5)", "gateway up (pid 6)"]
