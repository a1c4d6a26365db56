"""One error tree for the whole swarm, with stable codes and CLI exit codes.

Every error a user or a peer can see is a ``SwarmError``. Its ``code`` is a
stable string that crosses the bus as data (``to_wire``) and is rebuilt into
the same class on the other side (``from_wire``); its ``exit_code`` is what
the ``swarm`` command exits with when the error reaches it.
"""

from __future__ import annotations

from typing import Any


class SwarmError(Exception):
    """Base of every error the swarm reports on purpose."""

    code = "swarm_error"
    exit_code = 1

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_wire(self) -> tuple[str, str, dict[str, Any]]:
        """Return ``(code, message, details)`` for an error reply."""
        return self.code, self.message, dict(self.details)

    def __str__(self) -> str:
        return self.message


_BY_CODE: dict[str, type[SwarmError]] = {}


def _register(cls: type[SwarmError]) -> type[SwarmError]:
    _BY_CODE[cls.code] = cls
    return cls


def from_wire(code: str, message: str, details: dict[str, Any] | None = None) -> SwarmError:
    """Rebuild an error received as ``(code, message, details)``."""
    cls = _BY_CODE.get(code, SwarmError)
    err = cls(message, **(details or {}))
    if cls is SwarmError:
        err.code = code  # keep the remote code even when we do not know it
    return err


@_register
class ConfigError(SwarmError):
    """A swarm YAML (or a setting) is invalid; names file, field and line."""

    code = "config_invalid"
    exit_code = 2


@_register
class UsageError(SwarmError):
    """A command was called wrongly."""

    code = "usage"
    exit_code = 2


@_register
class ProtocolError(SwarmError):
    """A frame or message on the bus is malformed, oversized or unknown."""

    code = "protocol_error"
    exit_code = 3


@_register
class BusError(SwarmError):
    """The bus could not carry a message."""

    code = "bus_error"
    exit_code = 3


@_register
class UnknownDestination(BusError):
    """No live peer has the destination id."""

    code = "unknown_destination"


@_register
class PeerBusy(BusError):
    """The destination's queue is full; the message was not delivered."""

    code = "peer_busy"


@_register
class DeadlineExceeded(BusError):
    """A request got no reply before its deadline."""

    code = "deadline_exceeded"


@_register
class CallInterrupted(BusError):
    """The gateway restarted while the call was pending: ask again with the same call id."""

    code = "call_interrupted"


@_register
class NotRunning(SwarmError):
    """No supervisor answers for this run directory."""

    code = "not_running"
    exit_code = 4


@_register
class PolicyDenied(SwarmError):
    """A policy refused an action (depth, count, role, freeze, ...)."""

    code = "policy_denied"
    exit_code = 5


@_register
class QuotaExhausted(SwarmError):
    """A token or cost budget is used up."""

    code = "budget_exhausted"
    exit_code = 5


@_register
class OperatorError(SwarmError):
    """An operator's approve, deny or budget cannot be done: an unknown or decided request, an
    unknown or ended agent, a budget that is not a positive number."""

    code = "operator_refused"
    exit_code = 1


@_register
class NotFound(SwarmError):
    """An agent, file or memory item does not exist."""

    code = "not_found"
    exit_code = 6


@_register
class InvalidRequest(SwarmError):
    """A request's arguments are wrong (bad dimension, empty text, ...)."""

    code = "invalid_request"
    exit_code = 2


@_register
class ProviderError(SwarmError):
    """A model provider failed (no key, refused connection, bad model)."""

    code = "provider_error"
    exit_code = 7


@_register
class CassetteExhausted(ProviderError):
    """A replay cassette has no more responses for an agent."""

    code = "cassette_exhausted"


@_register
class Stopped(SwarmError):
    """The agent or service was stopped while the call was pending."""

    code = "stopped"
    exit_code = 8


@_register
class StorageError(SwarmError):
    """The run directory cannot be written (full, read-only, failing): nothing was changed.

    Reads go on; what was acknowledged before stays on disk.
    """

    code = "storage_unavailable"
    exit_code = 9


@_register
class InternalError(SwarmError):
    """A bug: an unexpected exception caught at a handler boundary."""

    code = "internal_error"
    exit_code = 70
