"""Whole swarms on real models: the embedded local Gemma, and an OpenAI-compatible llama.cpp server."""

from __future__ import annotations

import pytest

from tests.gateway_harness import llama_available, start_llama_server, stop_process
from tests.system.conftest import base_config

pytestmark = [
    pytest.mark.llama,
    pytest.mark.slow,
    pytest.mark.timeout(900),
    pytest.mark.skipif(not llama_available(), reason="llama-cpp-python is not installed (make install-local)"),
]

WRITER_CMDS = ["write_to_file", "task_complete"]


def writer_swarm(llm: dict) -> dict:
    cfg = base_config(goal="Write a haiku about the sea into haiku.txt", root="writer", llm=llm,
                      limits={"max_steps": 3, "max_wall_seconds": 600})
    cfg["agents"] = {"writer": {
        "role": "a writer. You write what you are asked into the file you are told, then finish.",
        "commands": WRITER_CMDS,
        "examples": [{"task": "Write a haiku about autumn into autumn.txt",
                      "answer": {"thoughts": {"text": "Write it.", "speak": "Writing."},
                                 "command": {"name": "write_to_file",
                                             "args": {"file": "autumn.txt", "text": "Red leaves fall"}}}}],
    }}
    return cfg


def check_run(run) -> None:
    """Every step parsed and used only the role's commands; tokens were counted from the provider."""
    agents = run.wait_for(lambda a: a.get("writer", {}).get("status") in ("done", "killed", "failed"),
                          timeout=600, what="the writer finished or hit max_steps")
    w = agents["writer"]
    assert w["status"] == "done" or w["reason"] == "max_steps", w
    events = run.log_events("writer")
    steps = [e for e in events if e.get("event") == "command_done"]
    assert steps, events[-5:]
    assert not [e for e in events if e.get("event") == "invalid_answer"]
    assert {e["command"] for e in steps} <= set(WRITER_CMDS)
    # usage comes from the gateway and may land just after the agent's own "done"
    w = run.wait_for(lambda a: a["writer"]["tokens"] > 0, what="usage counted")["writer"]
    assert w["requests"] >= len(steps)


def test_swarm_on_the_embedded_local_model(swarm):
    """A swarm on provider local (Gemma 3 270M in the gateway) makes well-formed, allowed steps."""
    run = swarm(writer_swarm({"provider": "local", "max_tokens": 200}), {})
    run.up()
    check_run(run)


def test_swarm_on_an_openai_compatible_server(swarm, tmp_path):
    """A swarm on provider openai against python -m llama_cpp.server on 127.0.0.1 makes allowed steps."""
    from orchestrator.gateway.model_files import gemma_path

    proc, url = start_llama_server(gemma_path(), tmp_path / "llama.log")
    try:
        run = swarm(writer_swarm({"provider": "openai", "base_url": url, "model": "gemma",
                                  "max_tokens": 300, "timeout": 300}), {}, sub="swarm")
        run.up()
        check_run(run)
    finally:
        stop_process(proc)
