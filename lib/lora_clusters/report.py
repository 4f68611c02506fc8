"""Numbers into pages: the values a chapter quotes, glued by name.

Studies return result objects whose ``glue_values()`` gives ``{name: value}``; a
chapter passes them to :func:`glue_all` in a hidden cell, and its text refers to each
by ``{glue:text}`name```; a figure is glued by :func:`glue_figure`.  Nothing here
computes anything.
"""

from __future__ import annotations

import html
import numbers

__all__ = ["Table", "glue_all", "glue_figure", "table"]


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


class Table:
    """Rows of equal keys, shown as a table: an HTML ``<table class="lora-table">`` on
    the site and in JupyterLab (it wraps within the text column instead of being cut
    off), plain text with right-aligned columns when printed (``str``)."""

    def __init__(self, rows: list[dict], caption: str = ""):
        self.rows, self.caption = list(rows), caption
        self.header = list(self.rows[0]) if self.rows else []
        self.cells = [[_cell(row[key]) for key in self.header] for row in self.rows]

    def __str__(self) -> str:
        if not self.rows:
            return "(no rows)"
        widths = [max(len(h), *(len(r[k]) for r in self.cells)) for k, h in enumerate(self.header)]
        lines = ["  ".join(h.rjust(w) for h, w in zip(self.header, widths))]
        lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in self.cells]
        return "\n".join(([self.caption] if self.caption else []) + lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        if not self.rows:
            return "<p>(no rows)</p>"
        numeric = [all(_is_number(row[key]) for row in self.rows) for key in self.header]

        def cell(tag, text, number):
            return f'<{tag} class="{"num" if number else "text"}">{html.escape(text)}</{tag}>'

        head = "".join(cell("th", h, n) for h, n in zip(self.header, numeric))
        body = "".join("<tr>" + "".join(cell("td", c, n) for c, n in zip(r, numeric)) + "</tr>" for r in self.cells)
        caption = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        return f'<table class="lora-table">{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _is_number(value) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, bool) and type(value).__name__ != "bool_"


def table(rows: list[dict], caption: str = "") -> Table:
    """Rows of equal keys as a :class:`Table` (display it, or print it as text)."""
    return Table(rows, caption)
