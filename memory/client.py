"""A typed wrapper over the memory service's bus requests.

Contract: every method sends one request to the service (peer id
``memory``) through the given :class:`BusClient` and waits at most
``timeout`` seconds; errors come back as the service raised them
(``InvalidRequest``, ``NotFound``, ``ProviderError``...) or as
``DeadlineExceeded`` / ``UnknownDestination`` from the bus. Like the bus
client, it is used from the thread that drives the bus client's loop.

This module imports neither numpy nor faiss, so agents can use it.
"""

from __future__ import annotations

from typing import Any, Sequence

from memory.namespaces import SHARED
from swarm_core import messages as m

SERVICE = "memory"


class MemoryClient:
    """add / search / delete / stats / clear over the bus."""

    def __init__(self, bus: Any, timeout: float = 30.0, service: str = SERVICE) -> None:
        self._bus = bus
        self.timeout = timeout
        self.service = service

    def _call(self, body: Any, timeout: float | None) -> Any:
        return self._bus.request(self.service, body, self.timeout if timeout is None else timeout)

    def add(self, texts: str | Sequence[str], namespace: str = SHARED,
            metadata: Sequence[dict[str, Any]] | dict[str, Any] | None = None,
            vectors: Sequence[Sequence[float]] | None = None, *,
            timeout: float | None = None, request_id: str = "") -> list[int]:
        """Store one text or many; return the new ids in order.

        ``metadata`` is one object for a single text or one per text;
        ``vectors`` (optional) skips the service's embedder; a numpy array
        travels packed as float32 bytes, lists as lists of floats. The same
        ``request_id`` sent again (a retry) stores nothing new and returns
        the first try's ids.
        """
        items = [texts] if isinstance(texts, str) else list(texts)
        if isinstance(metadata, dict):
            metas = [metadata] * len(items)
        else:
            metas = list(metadata or [])
        if _is_array(vectors):
            body = m.MemAdd(namespace, items, metas, vectors_f32=_packed(vectors), request_id=request_id)
        else:
            body = m.MemAdd(namespace, items, metas, _float_rows(vectors) if vectors is not None else [],
                            request_id=request_id)
        reply = self._call(body, timeout)
        return list(reply.ids)

    def search(self, query: str, k: int = 5, namespaces: Sequence[str] | str = (SHARED,),
               vector: Sequence[float] | None = None, *,
               timeout: float | None = None) -> list[dict[str, Any]]:
        """The best ``k`` hits across ``namespaces``, best first.

        Each hit has ``id``, ``score``, ``text``, ``namespace``, ``metadata``.
        """
        spaces = [namespaces] if isinstance(namespaces, str) else list(namespaces)
        if _is_array(vector):
            body = m.MemSearch(spaces, query, k, vector_f32=_packed(vector))
        else:
            body = m.MemSearch(spaces, query, k, _float_rows([vector])[0] if vector is not None else [])
        reply = self._call(body, timeout)
        return list(reply.hits)

    def delete(self, ids: int | Sequence[int], namespace: str = SHARED, *,
               timeout: float | None = None) -> int:
        """Delete items (all or nothing); return how many were deleted."""
        id_list = [ids] if isinstance(ids, int) else [int(i) for i in ids]
        reply = self._call(m.MemDelete(namespace, id_list), timeout)
        return int(reply.info.get("deleted", 0))

    def clear(self, namespace: str, *, timeout: float | None = None) -> int:
        """Remove every item of ``namespace``; return how many there were."""
        reply = self._call(m.MemClear(namespace), timeout)
        return int(reply.info.get("cleared", 0))

    def stats(self, *, timeout: float | None = None) -> dict[str, Any]:
        """Counts per namespace, the embedder, the persistence state."""
        return dict(self._call(m.MemStats(), timeout).stats)


def _is_array(value: Any) -> bool:
    """A numpy array (duck-typed: this module does not import numpy)."""
    return hasattr(value, "astype") and hasattr(value, "tobytes")


def _packed(array: Any) -> bytes:
    """Rows of a numpy array as little-endian float32 bytes, the fast wire form."""
    return array.astype("<f4", copy=False).tobytes()


def _float_rows(rows: Any) -> list[list[float]]:
    """Plain Python floats for the wire (a numpy array converts in one call)."""
    if hasattr(rows, "tolist"):
        return rows.tolist()
    return [v.tolist() if hasattr(v, "tolist") else [float(x) for x in v] for v in rows]
