"""The scale of the GPU chapters: one setting outside the code cells.

``LORA_BOOK_SCALE`` in the environment picks it:

- ``smoke``: the smallest runs that still exercise every code path (the tests);
- ``cpu``: the default build, sized to run on a laptop CPU;
- ``gpu``: the paper's sizes (``make gpu``).

jupyter-cache keys a chapter on its code cells only, so changing the scale does not
re-run a cached chapter: the committed cache holds whichever scale last executed, and
every chapter records the scale it ran at (:func:`lora_clusters.provenance.record`).

Two more settings let a reader with the paper's model and data run the same chapters
on them (``make gpu MODEL=... DATA=...``): ``LORA_BOOK_MODEL`` names a model folder
that replaces the scale's model (:func:`settings_for`), and ``LORA_BOOK_DATA`` an IMDb
copy for the LoRA chapter (:func:`lora_clusters.nets.lm_lora.chapter_data`).
"""

from __future__ import annotations

import os
from dataclasses import replace

__all__ = ["DATA_ENV", "ENV", "MODEL_ENV", "SCALES", "current", "settings_for"]

ENV = "LORA_BOOK_SCALE"
#: a model folder (for instance Llama-2-7B) that replaces every scale's model
MODEL_ENV = "LORA_BOOK_MODEL"
#: an IMDb copy that replaces the LoRA chapter's review snippets
DATA_ENV = "LORA_BOOK_DATA"
SCALES = ("smoke", "cpu", "gpu")
DEFAULT = "cpu"


def current() -> str:
    """The scale named by ``LORA_BOOK_SCALE`` (default ``cpu``); an unknown name is an error."""
    name = os.environ.get(ENV, DEFAULT).strip().lower() or DEFAULT
    if name not in SCALES:
        raise ValueError(f"{ENV} must be one of {', '.join(SCALES)}, got {name!r}")
    return name


def settings_for(table: dict, scale_name: str | None = None):
    """The entry of ``table`` (scale name -> frozen dataclass with a ``model`` field) for
    ``scale_name`` (default: the current scale), its model replaced by
    ``$LORA_BOOK_MODEL`` when that is set."""
    name = scale_name or current()
    if name not in table:
        raise ValueError(f"scale_name must be one of {', '.join(table)}, got {name!r}")
    override = os.environ.get(MODEL_ENV, "").strip()
    return replace(table[name], model=override) if override else table[name]
