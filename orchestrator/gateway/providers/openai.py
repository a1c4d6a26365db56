"""The ``openai`` provider: OpenAI, Azure OpenAI or any OpenAI-compatible server.

* The key comes from the environment variable named by ``llm.api_key_env``
  (never from the config file). With a ``base_url`` (vLLM, Ollama, a
  llama.cpp server...) a missing key is replaced by a placeholder: such
  servers often need none, and one that does answers 401, reported clearly.
  A ``base_url`` containing "azure" uses the Azure client (``llm.model`` is
  the deployment; ``OPENAI_API_VERSION`` sets the API version).
* Chat messages: ``Complete.messages`` if given, else the seed's pair: the
  prompt as the system message and the seed's user turn.
* ``response_format`` carries the answer's JSON schema in the form
  llama.cpp's server understands (``{"type": "json_object", "schema": ...}``);
  a server that answers 400 to it is asked again without it, and never again.
* The client's own retries are off; this provider retries 429, 5xx and
  connection failures ``llm.max_retries`` times with exponential backoff,
  honouring ``Retry-After``, never past the caller's deadline.
* Every failure is a one-line :class:`ProviderError` (missing key, refused
  connection, unknown model, refused key, ...), never a traceback.
"""

from __future__ import annotations

import email.utils
import json
import os
import random
import threading
import time
from typing import Any, Callable

from orchestrator.config import LLM
from orchestrator.gateway import schema
from orchestrator.gateway.providers.base import Request, Result, default_bound
from orchestrator.gateway.quotas import estimate_tokens
from swarm_core.errors import ProviderError

USER_TURN = "Determine which next command to use, and respond using the format specified above:"
DEFAULT_MODEL = "gpt-4o-mini"
NO_KEY = "sk-no-key-needed"
MAX_BACKOFF = 30.0


def _one_line(text: Any, limit: int = 240) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _detail(exc: Any) -> str:
    """The server's own error message, without the client's "Error code: N - " prefix."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        msg = inner.get("message") if isinstance(inner, dict) else None
        if isinstance(msg, str) and msg:
            return msg
        detail = body.get("detail")  # FastAPI-style servers (llama.cpp's) answer {"detail": ...}
        if detail:
            return str(detail)
    text = str(getattr(exc, "message", exc))
    prefix = f"Error code: {getattr(exc, 'status_code', '')} - "
    return text[len(prefix):] if text.startswith(prefix) else text


def retry_after(headers: Any, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` (or ``retry-after-ms``) header asks us to wait, if any."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def backoff(attempt: int, hint: float | None, rand: Callable[[], float] = random.random) -> float:
    """Wait before retry ``attempt`` (0-based): the server's hint, else 0.5·2^n with jitter."""
    if hint is not None:
        return min(hint, MAX_BACKOFF)
    return min(0.5 * (2 ** attempt) * (0.75 + 0.5 * rand()), MAX_BACKOFF)


class OpenAIProvider:
    """Chat completions through the official ``openai`` client."""

    name = "openai"
    concurrency = 0

    def __init__(self, llm: LLM, log: Any, *, env: dict[str, str] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        import openai

        env = dict(os.environ if env is None else env)
        self._openai = openai
        self._cfg = llm
        self._log = log
        self._sleep = sleep
        self._lock = threading.Lock()
        self._use_format = True
        self.base_url = llm.base_url or ""
        key = env.get(llm.api_key_env, "")
        if not key:
            if not llm.base_url:
                raise ProviderError(
                    f"openai: no API key: set the environment variable {llm.api_key_env} "
                    "(or llm.base_url for a local OpenAI-compatible server)", env=llm.api_key_env)
            key = NO_KEY
        self._where = llm.base_url or "api.openai.com"
        common: dict[str, Any] = {"api_key": key, "timeout": llm.timeout, "max_retries": 0}
        try:
            if "azure" in self.base_url.lower():
                self.client = openai.AzureOpenAI(
                    azure_endpoint=self.base_url,
                    api_version=env.get("OPENAI_API_VERSION", "2024-10-21"), **common)
            else:
                self.client = openai.OpenAI(base_url=llm.base_url or None, **common)
        except openai.OpenAIError as exc:
            raise ProviderError(f"openai: cannot set up the client: {_one_line(exc)}") from None
        self.model = llm.model or ("" if llm.base_url else DEFAULT_MODEL)

    # ------------------------------------------------------------ helpers

    def _model_name(self, req: Request) -> str:
        """The configured model, or the first one a compatible server lists."""
        with self._lock:
            if not self.model:
                models = self._call(lambda t: self.client.models.list(timeout=t), req)
                ids = [m.id for m in getattr(models, "data", [])]
                if not ids:
                    raise ProviderError(f"openai: the server at {self._where} lists no models; "
                                        "set llm.model")
                self.model = ids[0]
                self._log.info("openai_model_chosen", model=self.model, base_url=self._where)
            return self.model

    def _messages(self, req: Request) -> list[dict[str, Any]]:
        if req.messages:
            out = []
            for i, msg in enumerate(req.messages):
                if not isinstance(msg.get("role"), str) or not isinstance(msg.get("content"), str):
                    raise ProviderError(f"openai: messages[{i}] needs a string role and content")
                out.append({"role": msg["role"], "content": msg["content"]})
            return out
        return [{"role": "system", "content": req.prompt}, {"role": "user", "content": USER_TURN}]

    def _response_format(self, req: Request) -> dict[str, Any] | None:
        if not self._use_format or not req.commands:
            return None
        # thoughts sized to the token budget so the whole answer fits (five of them)
        thought = max(20, min(120, req.max_tokens // 4))
        try:
            return {"type": "json_object",
                    "schema": schema.answer_schema(req.commands, thought_max_len=thought)}
        except ValueError:
            return None

    def usage_bound(self, req: Request) -> tuple[int, int]:
        """Every byte of the messages and of the answer's schema, plus ``max_tokens``."""
        fmt = self._response_format(req)
        return default_bound(Request(req.agent_id, req.prompt, messages=tuple(self._messages(req)),
                                     max_tokens=req.max_tokens), json.dumps(fmt) if fmt else "")

    def _explain(self, exc: Exception, model: str) -> ProviderError:
        o = self._openai
        if isinstance(exc, o.APITimeoutError):
            return ProviderError(f"openai: {self._where} did not answer in time")
        if isinstance(exc, o.APIConnectionError):
            cause = exc.__cause__ or exc.__context__
            why = "connection refused" if "refused" in repr(cause).lower() else _one_line(cause or exc, 120)
            return ProviderError(f"openai: cannot connect to {self._where} ({why})")
        if isinstance(exc, o.APIStatusError):
            status = exc.status_code
            detail = _one_line(_detail(exc), 160)
            if status == 404:
                return ProviderError(f"openai: model {model!r} not found at {self._where} (404): {detail}",
                                     status=status)
            if status in (401, 403):
                return ProviderError(f"openai: {self._where} refused the API key from "
                                     f"{self._cfg.api_key_env} ({status}): {detail}", status=status)
            return ProviderError(f"openai: {self._where} answered {status}: {detail}", status=status)
        return ProviderError(f"openai: {type(exc).__name__}: {_one_line(exc)}")

    def _retryable(self, exc: Exception) -> bool:
        o = self._openai
        if isinstance(exc, o.APITimeoutError):
            return False  # the whole timeout was spent already
        if isinstance(exc, o.APIConnectionError):
            return True
        return isinstance(exc, o.APIStatusError) and (exc.status_code == 429 or exc.status_code >= 500)

    def _call(self, fn: Callable[[float], Any], req: Request, model: str = "") -> Any:
        """Run ``fn(timeout)`` with retries and backoff, within the caller's deadline."""
        attempt = 0
        while True:
            timeout = req.remaining(self._cfg.timeout)
            if timeout <= 0:
                raise ProviderError("openai: the caller's deadline passed before the model answered")
            try:
                return fn(timeout)
            except self._openai.OpenAIError as exc:
                if not self._retryable(exc) or attempt >= self._cfg.max_retries:
                    raise self._explain(exc, model) from None
                response = getattr(exc, "response", None)
                wait = backoff(attempt, retry_after(getattr(response, "headers", None)))
                if wait >= req.remaining(float("inf")):
                    raise self._explain(exc, model) from None
                self._log.info("openai_retry", attempt=attempt + 1, wait_s=round(wait, 2),
                               error=_one_line(exc, 120))
                self._sleep(wait)
                attempt += 1

    # ---------------------------------------------------------- completion

    def complete(self, req: Request) -> Result:
        model = self._model_name(req)
        messages = self._messages(req)
        fmt = self._response_format(req)

        def create(timeout: float, with_format: bool) -> Any:
            extra = {"response_format": fmt} if with_format and fmt else {}
            return self.client.chat.completions.create(
                model=model, messages=messages, max_tokens=req.max_tokens,
                temperature=self._cfg.temperature, timeout=timeout, **extra)

        try:
            resp = self._call(lambda t: create(t, True), req, model)
        except ProviderError as err:
            if fmt is None or err.details.get("status") != 400:
                raise
            self._use_format = False  # this server does not take our response_format
            self._log.info("openai_response_format_refused", base_url=self._where, error=err.message)
            resp = self._call(lambda t: create(t, False), req, model)
        if not resp.choices:
            raise ProviderError(f"openai: {self._where} returned no choices")
        text = resp.choices[0].message.content or ""
        usage = resp.usage
        prompt_tokens = usage.prompt_tokens if usage else estimate_tokens(req.prompt)
        completion_tokens = usage.completion_tokens if usage else estimate_tokens(text)
        return Result(text, int(prompt_tokens or 0), int(completion_tokens or 0), resp.model or model)

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # closing a pool that is gone already is fine
            pass
