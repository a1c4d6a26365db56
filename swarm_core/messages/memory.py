"""Message bodies: Any peer ↔ the memory service.

Bodies are small frozen dataclasses; fields travel positionally, so add new
fields at the end with a default to stay compatible.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from swarm_core.wire import message


@message
@dataclass(frozen=True, slots=True)
class MemAdd:
    """Add texts (embedded by the service unless vectors are given).

    Vectors travel either as lists of floats or, faster, as ``vectors_f32``:
    the rows packed as little-endian float32 bytes (``len(texts) * dim * 4``).
    """

    TYPE = "mem_add"
    namespace: str
    texts: list[str]
    metadata: list[dict[str, Any]] = field(default_factory=list)
    vectors: list[list[float]] = field(default_factory=list)
    vectors_f32: bytes = b""
    request_id: str = ""  # the same for a retry: the texts are stored once, each try gets their ids


@message
@dataclass(frozen=True, slots=True)
class MemAdded:
    """Reply to MemAdd: the stable ids given, in order."""

    TYPE = "mem_added"
    ids: list[int]


@message
@dataclass(frozen=True, slots=True)
class MemSearch:
    """Search one or more namespaces; best ``k`` hits across all of them.

    A query vector replaces the query text, as a list or as little-endian
    float32 bytes (``vector_f32``, ``dim * 4`` bytes).
    """

    TYPE = "mem_search"
    namespaces: list[str]
    query: str
    k: int = 5
    vector: list[float] = field(default_factory=list)
    vector_f32: bytes = b""


@message
@dataclass(frozen=True, slots=True)
class MemHits:
    """Reply to MemSearch: dicts with id, score, text, namespace, metadata."""

    TYPE = "mem_hits"
    hits: list[dict[str, Any]]


@message
@dataclass(frozen=True, slots=True)
class MemDelete:
    """Delete items by id from a namespace."""

    TYPE = "mem_delete"
    namespace: str
    ids: list[int]


@message
@dataclass(frozen=True, slots=True)
class MemStats:
    """Ask for per-namespace counts and the embedder in use."""

    TYPE = "mem_stats"


@message
@dataclass(frozen=True, slots=True)
class MemStatsReply:
    """Reply to MemStats."""

    TYPE = "mem_stats_reply"
    stats: dict[str, Any]


@message
@dataclass(frozen=True, slots=True)
class MemClear:
    """Remove every item of a namespace."""

    TYPE = "mem_clear"
    namespace: str
