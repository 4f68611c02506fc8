"""Numbers into pages: the values a chapter quotes, glued by name.

Studies return result objects whose ``glue_values()`` gives ``{name: value}``; a
chapter passes them to :func:`glue_all` in a hidden cell, and its text refers to each
by ``{glue:text}`name```.  Nothing here computes anything.
"""

from __future__ import annotations

__all__ = ["glue_all"]


def glue_all(values: dict) -> None:
    """Glue every ``name: value`` pair of ``values`` (myst-nb), without displaying it."""
    from myst_nb import glue

    for name, value in values.items():
        glue(name, value, display=False)
