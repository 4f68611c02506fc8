"""The book's figures, by half: :mod:`~lora_clusters.plots.style` (the style and helpers
both halves use), :mod:`~lora_clusters.plots.particles` (chapters 1-5: tokens as
particles, animations, panel views) and :mod:`~lora_clusters.plots.networks` (chapters
6-9: trained networks).

Nothing is imported here: a chapter imports the half it draws with, and is
re-executed only when that half (or the style) changes.
"""
