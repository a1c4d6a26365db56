"""Does `make run` do the job? The demo swarm N times on the embedded model, one seed each.

Each run is the real `swarm up` (foreground) on a copy of configs/demo.yaml
with `llm.seed` set, in its own temporary directory (run dir and workspace).
A run succeeds when exactly one writer was started, the goal's file holds a
poem of its own (not an example's lines), and the manager's final result is
clean (no prompt fragments). Seconds per step are the local model's own time
per call (the gateway's `local_completion` events), held against a raw
baseline measured before and after the runs: llama.cpp alone reading the
manager's first prompt and writing 60 tokens. The load average is printed
with every run, since these machines are shared. Targets: at least 9 of 10
runs succeed, at most 5 s per step.

    python bench/demo.py [--runs 10] [--seeds 11,12,...] [--keep]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's code, also for the swarm it starts (PYTHONPATH)
CONFIG = ROOT / "configs" / "demo.yaml"
FIRST_SEED = 1601
RUN_TIMEOUT = 1200.0
# what a base model leaks when it copies its prompt instead of answering
FRAGMENTS = ("INBOX", "Inbox:", "do_nothing", "start_agent", "Done so far", "Answer:", "Task:", "{", "}")


@dataclass
class Run:
    """What one demo run did."""

    seed: int
    code: int
    writers: int
    poem: str | None
    result: str
    steps: int
    calls: list[float]
    seconds: float
    load: float
    copied: frozenset[str] = frozenset()  # lines of the worked examples

    def poem_ok(self) -> bool:
        return self.poem is not None and is_poem(self.poem, self.copied)

    def result_ok(self) -> bool:
        return self.code == 0 and is_clean(self.result)

    def success(self) -> bool:
        return self.writers == 1 and self.poem_ok() and self.result_ok()

    def per_step(self) -> float:
        return sum(self.calls) / len(self.calls) if self.calls else float("nan")


def is_clean(text: str) -> bool:
    """A final result a person can read: one short line, no prompt fragments."""
    return bool(text.strip()) and "\n" not in text.strip() and not any(f in text for f in FRAGMENTS)


def example_lines() -> set[str]:
    """Every line of text the model is shown in a worked example (the generic ones and the demo's)."""
    from swarm_core.catalog import CATALOG

    shown = [dataclasses.asdict(c.episode) for c in map(CATALOG.get, CATALOG.names()) if c and c.episode]
    shown.append(yaml.safe_load(CONFIG.read_text()).get("agents", {}))
    return {_norm(line) for text in _strings(shown) for line in text.splitlines() if len(_norm(line)) > 8}


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else ()
    return [s for v in items for s in _strings(v)]


def _norm(line: str) -> str:
    return " ".join(re.sub(r"[^a-z ]", " ", line.lower()).split())


def is_poem(text: str, copied: set[str] = frozenset()) -> bool:
    """At least two lines and six words of verse: not a file claim, not a prompt copy, not one line
    repeated, no line copied from a worked example (``copied``)."""
    lines = [x.strip() for x in text.splitlines() if x.strip()]
    return (len(lines) >= 2 and len(text.split()) >= 6 and ".txt" not in text
            and not any(f in text for f in FRAGMENTS) and len(set(lines)) > 1
            and not any(_norm(x) in copied for x in lines))


def cli(run_dir: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", "--run-dir", str(run_dir), *args],
                          env=env, capture_output=True, text=True, timeout=timeout, cwd=run_dir.parent)


def write_config(tmp: Path, seed: int) -> tuple[Path, str]:
    """configs/demo.yaml with ``llm.seed``, in ``tmp`` (so its workspace is there); and the goal's file."""
    cfg = yaml.safe_load(CONFIG.read_text())
    cfg["llm"] = {**cfg.get("llm", {}), "seed": seed}
    path = tmp / "demo.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True))
    target = re.search(r"[\w.-]+\.txt", cfg["goal"])
    return path, target.group(0) if target else "poem.txt"


def read_calls(run_dir: Path) -> list[float]:
    log = run_dir / "logs" / "gateway.jsonl"
    events = [json.loads(x) for x in log.read_text().splitlines() if x.strip()] if log.exists() else []
    return [e["seconds"] for e in events if e.get("event") == "local_completion"]


def one_run(seed: int, keep: bool) -> Run:
    """Run the demo once with ``seed`` through the real CLI and judge what it did."""
    tmp = Path(tempfile.mkdtemp(prefix=f"swarm-demo-{seed}-"))
    run_dir = tmp / "run"
    config, target = write_config(tmp, seed)
    started = time.monotonic()
    try:
        up = cli(run_dir, "up", str(config), timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        up = subprocess.CompletedProcess([], 124, "", "timed out")
    finally:  # also on Ctrl-C: leave no swarm behind (a no-op when `up` brought it down)
        cli(run_dir, "down")
    seconds = time.monotonic() - started
    agents = json.loads(cli(run_dir, "ps", "--json").stdout or "[]")
    done = re.search(r"^\S+ completed: (.*)$", up.stdout, re.M)
    poem_file = tmp / "workspace" / target
    run = Run(seed, up.returncode, sum(1 for a in agents if a["role"] == "writer"),
              poem_file.read_text(errors="replace") if poem_file.is_file() else None,
              done.group(1) if done else (up.stderr.strip().splitlines() or [""])[-1],
              sum(a["steps"] for a in agents), read_calls(run_dir), seconds, os.getloadavg()[0],
              frozenset(example_lines()))
    if keep:
        print(f"    kept {tmp}", file=sys.stderr)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return run


def raw_step() -> float:
    """Seconds for llama.cpp alone to read the manager's first prompt and write 60 tokens (no grammar,
    no swarm, one thread): the baseline one step is held against, measured on the machine as it is now."""
    import llama_cpp

    from agents.prompt import PromptInput, build_prompt
    from orchestrator.config import load_config
    from orchestrator.gateway import fewshot
    from orchestrator.gateway.model_files import gemma_path

    cfg = load_config(CONFIG)
    role = cfg.agents[cfg.root]
    _, ctx = build_prompt(PromptInput(name=cfg.root, role=role.role, task=cfg.goal, goals=list(role.goals),
                                      commands=list(role.commands), can_start=list(role.can_start),
                                      examples=list(role.examples)))
    prompt = fewshot.build_prompt(ctx, role.commands)
    model = llama_cpp.Llama(model_path=str(gemma_path()), n_ctx=cfg.llm.context, n_threads=1,
                            n_threads_batch=1, verbose=False)
    try:
        started = time.monotonic()
        model.create_completion(prompt, max_tokens=60, temperature=0.0)
        return time.monotonic() - started
    finally:
        model.close()


def row(r: Run) -> str:
    poem = (r.poem or "-").strip().replace("\n", " / ")
    return (f"{r.seed:>6} {'yes' if r.success() else 'NO':>7} {r.writers:>7} {'ok' if r.poem_ok() else 'bad':>5} "
            f"{'ok' if r.result_ok() else 'bad':>6} {r.steps:>5} {r.per_step():>6.1f} {r.seconds:>7.1f} "
            f"{r.load:>5.1f}  {r.result[:60]!r}  {poem[:70]!r}")


def summary(runs: list[Run], raw: list[float]) -> list[str]:
    ok = sum(r.success() for r in runs)
    calls = [c for r in runs for c in r.calls]
    per_step, base = sum(calls) / max(1, len(calls)), sum(raw) / len(raw)
    return [f"successes: {ok}/{len(runs)} (target >= 9/10)",
            f"mean steps: {sum(r.steps for r in runs) / len(runs):.1f}",
            f"seconds per step: {per_step:.2f} mean over {len(calls)} model calls, "
            f"max {max(calls, default=float('nan')):.2f} (target <= 5 s); raw llama.cpp step "
            f"{base:.2f} s ({' / '.join(f'{x:.2f}' for x in raw)} before / after): {per_step / base:.2f}x raw",
            f"total time: {sum(r.seconds for r in runs):.0f} s, mean {sum(r.seconds for r in runs) / len(runs):.0f} s"
            f" a run; load average (1 min) after the runs {min(r.load for r in runs):.1f}-"
            f"{max(r.load for r in runs):.1f} on {os.cpu_count()} cores",
            "seeds: " + ",".join(str(r.seed) for r in runs)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--seeds", help="comma-separated seeds (default: 10 consecutive from %d)" % FIRST_SEED)
    ap.add_argument("--keep", action="store_true", help="keep each run's directory")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else \
        list(range(FIRST_SEED, FIRST_SEED + args.runs))
    print(f"demo: {CONFIG.relative_to(ROOT)} x {len(seeds)}, load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores", flush=True)
    print(f"{'seed':>6} {'success':>7} {'writers':>7} {'poem':>5} {'result':>6} {'steps':>5} {'s/step':>6} "
          f"{'total s':>7} {'load':>5}  result  poem", flush=True)
    raw, runs = [raw_step()], []
    for seed in seeds:
        runs.append(one_run(seed, args.keep))
        print(row(runs[-1]), flush=True)
    raw.append(raw_step())
    print("\n".join(summary(runs, raw)))
    return 0 if sum(r.success() for r in runs) * 10 >= 9 * len(runs) else 1


if __name__ == "__main__":
    sys.exit(main())
