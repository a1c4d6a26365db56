"""Environments rebuilt from an allow-list, never copied from ``swarm up``'s.

Whatever the operator exported when starting a swarm (API keys, tokens,
``SWARM_*`` settings) stays with the supervisor and the LLM gateway, the two
processes that need it. The zygote (hence every agent) gets
:func:`agent_environment`: the locale, ``PATH``, ``HOME``, a few interpreter
switches and ``PYTHONPATH`` = the project, nothing else. The memory service
gets :func:`memory_environment`: the same plus, when it embeds through an
OpenAI-compatible server, that server's key variable and the proxy and
certificate settings an HTTP client reads. Code run by
``execute_python_file`` gets an even smaller one (``agents.sandbox``).
"""

from __future__ import annotations

from typing import Mapping

NAMES = ("PATH", "LANG", "LANGUAGE", "TZ", "HOME", "USER", "LOGNAME", "TERM",
         "PYTHONIOENCODING", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PYTHONHASHSEED",
         "PYTHONFAULTHANDLER", "PYTHONWARNINGS", "VIRTUAL_ENV",
         "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
PREFIXES = ("LC_",)
HTTP_CLIENT = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
               "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE")


def allowed(env: Mapping[str, str], names: tuple[str, ...] = NAMES,
            prefixes: tuple[str, ...] = PREFIXES) -> dict[str, str]:
    """The variables of ``env`` named in ``names`` or starting with one of ``prefixes``."""
    return {k: v for k, v in env.items() if k in names or k.startswith(prefixes)}


def agent_environment(env: Mapping[str, str], project: str) -> dict[str, str]:
    """The zygote's (and so every agent's) environment: the allow-list plus ``PYTHONPATH`` = ``project``."""
    out = allowed(env)
    out["PYTHONPATH"] = project
    return out


def memory_environment(env: Mapping[str, str], project: str,
                       api_key_env: str | None = None) -> dict[str, str]:
    """The memory service's environment: the agents' plus what an OpenAI-compatible embedder needs."""
    out = agent_environment(env, project)
    if api_key_env:
        out.update(allowed(env, HTTP_CLIENT + (api_key_env,), ()))
    return out
