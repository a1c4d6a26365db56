"""Checks on memory requests, before any work is done.

Contract: each ``check_*`` function returns the cleaned value or raises
:class:`InvalidRequest` naming the field, the offending item and the limit.
The limits are one :class:`Limits` value (the service's configuration).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from memory.namespaces import check_namespace
from swarm_core.errors import InvalidRequest


@dataclass(frozen=True)
class Limits:
    """What one memory request may carry."""

    max_text_bytes: int = 8 * 1024  # UTF-8 bytes per text
    max_texts: int = 1000  # texts per add
    max_metadata_bytes: int = 4 * 1024  # JSON bytes per metadata object
    max_k: int = 100
    max_namespaces: int = 16  # namespaces one search may span
    max_ids: int = 10_000  # ids per delete
    max_request_id: int = 128  # characters of an add's request id


def check_text(text: Any, limits: Limits, what: str = "text") -> str:
    """A non-blank string of at most ``max_text_bytes`` UTF-8 bytes."""
    if not isinstance(text, str):
        raise InvalidRequest(f"{what} must be a string", field=what)
    if not text.strip():
        raise InvalidRequest(f"{what} is empty", field=what)
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limits.max_text_bytes:
        raise InvalidRequest(
            f"{what} is {size} bytes, more than the limit of {limits.max_text_bytes}",
            field=what, size=size, limit=limits.max_text_bytes)
    return text


def check_texts(texts: Sequence[Any], limits: Limits) -> list[str]:
    """1..max_texts texts, each checked with :func:`check_text`."""
    if not texts:
        raise InvalidRequest("no texts to add", field="texts")
    if len(texts) > limits.max_texts:
        raise InvalidRequest(f"{len(texts)} texts in one add, more than the limit of {limits.max_texts}",
                             field="texts", limit=limits.max_texts)
    return [check_text(t, limits, f"texts[{i}]") for i, t in enumerate(texts)]


def check_metadata(metadata: Sequence[Any], n: int, limits: Limits) -> list[dict[str, Any]]:
    """Empty, or one JSON-serialisable object per text, each at most ``max_metadata_bytes``."""
    if not metadata:
        return [{} for _ in range(n)]
    if len(metadata) != n:
        raise InvalidRequest(f"{len(metadata)} metadata objects for {n} texts", field="metadata")
    out = []
    for i, meta in enumerate(metadata):
        if not isinstance(meta, dict):
            raise InvalidRequest(f"metadata[{i}] must be an object", field=f"metadata[{i}]")
        try:
            size = len(json.dumps(meta, ensure_ascii=False, allow_nan=False).encode())
        except (TypeError, ValueError) as exc:
            raise InvalidRequest(f"metadata[{i}] is not JSON-serialisable: {exc}",
                                 field=f"metadata[{i}]") from None
        if size > limits.max_metadata_bytes:
            raise InvalidRequest(
                f"metadata[{i}] is {size} bytes of JSON, more than the limit of {limits.max_metadata_bytes}",
                field=f"metadata[{i}]", size=size, limit=limits.max_metadata_bytes)
        out.append(meta)
    return out


def check_vector(vector: Sequence[Any], dim: int, what: str = "vector") -> np.ndarray:
    """``dim`` finite numbers, not all zero, as a float32 array."""
    return check_vectors([vector], 1, dim, what)[0]


def check_vectors(vectors: Sequence[Sequence[Any]], n: int, dim: int,
                  what: str = "vectors") -> np.ndarray:
    """One vector of ``dim`` finite numbers, not all zero, per text: an ``(n, dim)`` float32 array."""
    if len(vectors) != n:
        raise InvalidRequest(f"{len(vectors)} vectors for {n} texts", field=what)
    single = what.startswith("vector") and not what.startswith("vectors")
    name = (lambda i: what) if single else (lambda i: f"{what}[{i}]")
    for i, v in enumerate(vectors):
        if len(v) != dim:
            raise InvalidRequest(f"{name(i)} has dimension {len(v)}, expected {dim}",
                                 field=what, dim=dim, got=len(v))
    try:
        arr = np.asarray(vectors, dtype=np.float32).reshape(n, dim)  # no copy for a float32 array
    except (TypeError, ValueError):
        raise InvalidRequest(f"{what} must hold numbers only", field=what) from None
    with np.errstate(over="ignore"):
        finite = np.isfinite(arr).all(axis=1)
    if not finite.all():
        raise InvalidRequest(f"{name(int(np.argmin(finite)))} contains a value that is not a finite "
                             "float32 number", field=what)
    nonzero = arr.any(axis=1)
    if not nonzero.all():
        raise InvalidRequest(f"{name(int(np.argmin(nonzero)))} is all zeros (it has no direction)",
                             field=what)
    return arr


def check_packed(data: bytes, n: int, dim: int, what: str = "vectors_f32") -> np.ndarray:
    """``n`` vectors packed as little-endian float32 bytes, checked like :func:`check_vectors`."""
    want = n * dim * 4
    if len(data) != want:
        raise InvalidRequest(f"{what} has {len(data)} bytes, expected {want} ({n} x {dim} float32)",
                             field=what, dim=dim)
    return check_vectors(np.frombuffer(data, dtype="<f4").reshape(n, dim), n, dim, what)


def vectors_of(listed: Sequence[Any], packed: bytes, n: int, dim: int,
               what: str = "vectors") -> np.ndarray | None:
    """The request's vectors from its list or its packed field (None when it has neither)."""
    if listed and packed:
        raise InvalidRequest(f"give {what} or {what}_f32, not both", field=what)
    if packed:
        return check_packed(packed, n, dim, f"{what}_f32")
    if listed:
        return check_vectors(listed, n, dim, what)
    return None


def check_k(k: Any, limits: Limits) -> int:
    """An integer in 1..max_k."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= limits.max_k:
        raise InvalidRequest(f"k must be an integer from 1 to {limits.max_k}, got {k!r}",
                             field="k", limit=limits.max_k)
    return k


def check_namespaces(namespaces: Sequence[Any], limits: Limits) -> list[str]:
    """1..max_namespaces valid namespace names, duplicates dropped (order kept)."""
    if not namespaces:
        raise InvalidRequest("no namespace to search", field="namespaces")
    unique = list(dict.fromkeys(check_namespace(ns) for ns in namespaces))
    if len(unique) > limits.max_namespaces:
        raise InvalidRequest(f"{len(unique)} namespaces in one search, more than the limit of "
                             f"{limits.max_namespaces}", field="namespaces")
    return unique


def check_ids(ids: Sequence[Any], limits: Limits) -> list[int]:
    """1..max_ids integer ids."""
    if not ids:
        raise InvalidRequest("no ids to delete", field="ids")
    if len(ids) > limits.max_ids:
        raise InvalidRequest(f"{len(ids)} ids in one delete, more than the limit of {limits.max_ids}",
                             field="ids")
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise InvalidRequest("ids must be integers", field="ids")
    return list(ids)


def request_key(sender: str, request_id: str, limits: Limits) -> str | None:
    """The store's key of an add's request id (None without one): the sender and the id."""
    if not request_id:
        return None
    if len(request_id) > limits.max_request_id:
        raise InvalidRequest(f"request_id is {len(request_id)} characters, more than the limit of "
                             f"{limits.max_request_id}", field="request_id")
    return f"{sender}:{request_id}"
