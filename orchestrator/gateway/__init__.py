"""The LLM gateway: the one process that talks to models on behalf of the agents.

``service.py`` admits calls (quotas in ``quotas.py``, freezes, provider
slots) and runs them on a provider from ``providers/`` (replay, record,
openai, local); ``schema.py`` and ``fewshot.py`` shape the answers of small
local models; ``__main__.py`` is the process (``python -m orchestrator.gateway``).
"""
