"""Fixtures shared by the integration tests."""

from __future__ import annotations

import pytest

from tests.bus_harness import Bus
from tests.gateway_harness import GatewayRig


@pytest.fixture
def rig(tmp_path):
    """A broker thread, a gateway process and a supervisor peer under tmp_path; closed even on failure."""
    r = GatewayRig(tmp_path)
    try:
        yield r
    finally:
        r.close()


@pytest.fixture
def bus(tmp_path):
    """Brokers, clients and sockets with credentials under tmp_path; all closed even on failure."""
    b = Bus(tmp_path)
    try:
        yield b
    finally:
        b.close()
