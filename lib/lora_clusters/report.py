"""Numbers into pages: the values a chapter quotes, glued by name.

Studies return result objects whose ``glue_values()`` gives ``{name: value}``; a
chapter passes them to :func:`glue_all` in a hidden cell, and its text refers to each
by ``{glue:text}`name```; a figure is glued by :func:`glue_figure`.  Nothing here
computes anything.
"""

from __future__ import annotations

import numbers

__all__ = ["glue_all", "glue_figure", "table"]


def glue_all(values: dict) -> None:
    """Glue every ``name: value`` pair of ``values`` (myst-nb), without displaying it."""
    from myst_nb import glue

    for name, value in values.items():
        glue(name, value, display=False)


def glue_figure(name: str, figure) -> None:
    """Glue one matplotlib ``figure`` under ``name`` (myst-nb), without displaying it:
    a ``:::{figure}`` with ``:glue: name`` shows it with its caption."""
    from myst_nb import glue

    glue(name, figure, display=False)


def _cell(value) -> str:
    """Numbers to three significant digits (numpy scalars included), the rest as text."""
    if isinstance(value, (bool, str)) or type(value).__name__ == "bool_":
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return f"{float(value):.3g}"
    if isinstance(value, numbers.Complex):
        value = complex(value)
        return f"{value.real:.3f}{value.imag:+.3f}i" if abs(value.imag) > 1e-12 else f"{value.real:.3f}"
    return str(value)


def table(rows: list[dict]) -> str:
    """Rows of equal keys as a plain-text table (right-aligned columns): what a chapter prints."""
    if not rows:
        return "(no rows)"
    header = list(rows[0])
    cells = [[_cell(row[key]) for key in header] for row in rows]
    widths = [max(len(h), *(len(r[k]) for r in cells)) for k, h in enumerate(header)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)
