"""Where things are: the one definition of the repository root.

The science package lives in ``lib/lora_clusters`` of the book's repository; the build
tooling (:mod:`lora_book`), the stored results (:mod:`lora_clusters.store`) and the
tests find the repository from here.  A reader who installed the wheel has no
repository: :func:`repository_root` is then None.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["repository_root"]

_PACKAGE = Path(__file__).resolve().parent


def repository_root() -> Path | None:
    """The book's repository (the folder holding ``_toc.yml`` and ``lib/``) when this
    package is the one in its ``lib/`` folder, else None (an installed wheel)."""
    root = _PACKAGE.parents[1]
    return root if (root / "_toc.yml").is_file() and (root / "lib" / _PACKAGE.name).is_dir() else None
