"""The scale of the GPU chapters: one setting outside the code cells.

``LORA_BOOK_SCALE`` in the environment picks it:

- ``smoke``: the smallest runs that still exercise every code path (the tests);
- ``cpu``: the default build, sized to run on a laptop CPU;
- ``gpu``: the paper's sizes (``make gpu``).

jupyter-cache keys a chapter on its code cells only, so changing the scale does not
re-run a cached chapter: the committed cache holds whichever scale last executed, and
every chapter records the scale it ran at (:func:`lora_clusters.provenance.record`).
"""

from __future__ import annotations

import os

__all__ = ["ENV", "SCALES", "current"]

ENV = "LORA_BOOK_SCALE"
SCALES = ("smoke", "cpu", "gpu")
DEFAULT = "cpu"


def current() -> str:
    """The scale named by ``LORA_BOOK_SCALE`` (default ``cpu``); an unknown name is an error."""
    name = os.environ.get(ENV, DEFAULT).strip().lower() or DEFAULT
    if name not in SCALES:
        raise ValueError(f"{ENV} must be one of {', '.join(SCALES)}, got {name!r}")
    return name
