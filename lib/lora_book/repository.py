"""The book's repository, as the build tooling sees it: one definition for all of
:mod:`lora_book`.

:data:`ROOT` is :func:`lora_clusters._paths.repository_root`: the folder holding
``_toc.yml`` and ``lib/``, or None where this package runs from an installed wheel,
which has no repository (the tools that build, print or cache the book need one);
:data:`BUILT_SITE` is where ``make book`` writes the site.
"""

from __future__ import annotations

from lora_clusters._paths import repository_root

__all__ = ["BUILT_SITE", "ROOT"]

ROOT = repository_root()
BUILT_SITE = ROOT / "_build" / "html" if ROOT is not None else None
