"""Panels of chapters 6-9: live ipywidgets views of stored results, one module per chapter.

Each module holds one chapter's panel (and the figure it redraws), so that a change to
one panel changes only that chapter's fingerprint (:mod:`lora_book.fingerprint`).  The
shared plumbing, also used by the particle panels of :mod:`lora_clusters.widgets`, is
in :mod:`lora_clusters.panels.base`.  This file imports nothing on purpose.
"""
