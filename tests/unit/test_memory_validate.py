"""Unit tests of memory request checks (validate.py) and namespace syntax (namespaces.py)."""

from __future__ import annotations

import numpy as np
import pytest

from memory.namespaces import agent_namespace, check_namespace, is_namespace
from memory.validate import (
    Limits,
    check_ids,
    check_k,
    check_metadata,
    check_namespaces,
    check_packed,
    check_texts,
    vectors_of,
)
from swarm_core.errors import InvalidRequest

LIMITS = Limits(max_text_bytes=16, max_texts=3, max_metadata_bytes=30, max_namespaces=2, max_ids=4)


@pytest.mark.parametrize("name, ok", [
    ("shared", True), ("agent:writer-2", True), ("agent:a.b_c", True), ("agent:" + "x" * 128, True),
    ("agent:" + "x" * 129, False), ("agent:", False), ("agent:-x", False), ("agent:a/b", False),
    ("Shared", False), ("shared ", False), ("agent:a\n", False), (None, False), (3, False),
])
def test_namespace_syntax(name, ok):
    """Only 'shared' and 'agent:<id>' with the swarm's id syntax are namespaces."""
    assert is_namespace(name) is ok
    if not ok:
        with pytest.raises(InvalidRequest, match="use 'shared' or 'agent:<agent id>'"):
            check_namespace(name)


def test_agent_namespace_builds_and_checks():
    """agent_namespace prefixes the id and refuses an id that does not fit."""
    assert agent_namespace("w-2") == "agent:w-2"
    with pytest.raises(InvalidRequest):
        agent_namespace("../x")


def test_texts_limits_count_bytes_not_characters():
    """The size limit is in UTF-8 bytes, so multibyte characters count fully."""
    assert check_texts(["é" * 8], LIMITS) == ["é" * 8]
    with pytest.raises(InvalidRequest, match=r"texts\[0\] is 18 bytes, more than the limit of 16"):
        check_texts(["é" * 9], LIMITS)
    with pytest.raises(InvalidRequest, match="4 texts in one add"):
        check_texts(["a"] * 4, LIMITS)
    with pytest.raises(InvalidRequest, match=r"texts\[1\] must be a string"):
        check_texts(["a", 5], LIMITS)


def test_metadata_checks():
    """Metadata is empty or one JSON object per text within the size limit."""
    assert check_metadata([], 2, LIMITS) == [{}, {}]
    with pytest.raises(InvalidRequest, match=r"metadata\[0\] is not JSON-serialisable"):
        check_metadata([{"x": float("nan")}], 1, LIMITS)
    with pytest.raises(InvalidRequest, match=r"metadata\[0\] is \d+ bytes of JSON"):
        check_metadata([{"x": "y" * 40}], 1, LIMITS)
    with pytest.raises(InvalidRequest, match=r"metadata\[0\] must be an object"):
        check_metadata([[1]], 1, LIMITS)


def test_vectors_list_and_packed_agree():
    """The same vectors as float lists and as packed float32 bytes give the same array."""
    v = np.arange(1, 9, dtype=np.float32).reshape(2, 4)
    listed = vectors_of(v.tolist(), b"", 2, 4)
    packed = vectors_of([], v.astype("<f4").tobytes(), 2, 4)
    assert np.array_equal(listed, packed) and packed.dtype == np.float32
    assert vectors_of([], b"", 2, 4) is None
    with pytest.raises(InvalidRequest, match="not both"):
        vectors_of(v.tolist(), v.tobytes(), 2, 4)
    with pytest.raises(InvalidRequest, match=r"vectors\[1\] is all zeros"):
        check_packed(np.array([[1, 0, 0, 0], [0, 0, 0, 0]], "<f4").tobytes(), 2, 4, "vectors")


def test_k_namespaces_and_ids():
    """k is an int in 1..max_k; namespaces are deduplicated and bounded; ids are ints and bounded."""
    assert check_k(100, Limits()) == 100
    for bad in (0, 101, 2.0, True, "3"):
        with pytest.raises(InvalidRequest, match="k must be an integer from 1 to 100"):
            check_k(bad, Limits())
    assert check_namespaces(["shared", "agent:a", "shared"], LIMITS) == ["shared", "agent:a"]
    with pytest.raises(InvalidRequest, match="3 namespaces in one search"):
        check_namespaces(["shared", "agent:a", "agent:b"], LIMITS)
    with pytest.raises(InvalidRequest, match="ids must be integers"):
        check_ids([1, True], LIMITS)
    with pytest.raises(InvalidRequest, match="5 ids in one delete"):
        check_ids([1, 2, 3, 4, 5], LIMITS)
