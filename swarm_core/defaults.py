"""Defaults every process shares, written once."""

from __future__ import annotations

HEARTBEAT_INTERVAL = 1.0  # seconds between heartbeats, peer ↔ broker
LIVENESS = 3  # heartbeats missed before a peer is declared dead
STOP_GRACE = 2.0  # seconds between the steps of stop → SIGTERM → SIGKILL
KILL_RECHECK = 5.0  # seconds before a SIGKILL is sent again to a group still alive
SERVICE_STOP_GRACE = 3.0  # the same step for service processes
