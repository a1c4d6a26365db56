"""Model providers of the gateway, one module each; ``registry.py`` says which exist.

``replay`` and ``record`` need nothing beyond the core install; ``openai``
imports the ``openai`` client; ``local`` imports ``llama_cpp`` lazily (the
``local`` extra) when it first loads the model.
"""

from __future__ import annotations

from orchestrator.gateway.providers.base import Provider, Request, Result
from orchestrator.gateway.providers.registry import PROVIDERS, make_provider

__all__ = ["PROVIDERS", "Provider", "Request", "Result", "make_provider"]
