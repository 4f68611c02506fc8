r"""The book's LaTeX macros (``\Vt``, ``\R``, ...) wherever a chapter is shown.

One source: ``mathjax3_config.tex.macros`` in ``_config.yml``, which the site's MathJax
reads.  JupyterLab with jupyterlab-myst reads macros only from a front-matter block
(``math:``) at the top of a notebook's first markdown cell, so every chapter starts
with such a cell, tagged ``remove-cell`` so that the site (myst-nb skips markdown
cells with that tag) does not show it::

    +++ {"tags": ["remove-cell"]}

    ---
    math:
      '\R': '\mathbb{R}'
    ---

    +++

``python -m lora_book.macros --update book`` writes or refreshes that cell from
``_config.yml`` (``make book`` runs it; it touches a chapter only when the cell is
missing or stale), and ``--check`` (``make lint``) fails on a stale chapter.
"""

from __future__ import annotations

import re
from pathlib import Path

from . import chapter_rewrite
from .repository import ROOT

_CELL = re.compile(r'\n\+\+\+ \{"tags": \["remove-cell"\]\}\n\n---\nmath:\n(?:  .*\n)*---\n\n\+\+\+\n')
_HEADER_END = re.compile(r"\A---\n.*?\n---\n", re.DOTALL)


def book_macros(config: Path | None = None) -> dict[str, str]:
    """The macros of ``_config.yml``, name (without backslash) -> definition."""
    import yaml

    data = yaml.safe_load((config or ROOT / "_config.yml").read_text(encoding="utf-8"))
    return dict(data["sphinx"]["config"]["mathjax3_config"]["tex"]["macros"])


def macro_cell(macros: dict[str, str]) -> str:
    """The front-matter cell, as it sits in a chapter's MyST source."""
    lines = [f"  '\\{name}': '{definition}'" for name, definition in macros.items()]
    return '\n+++ {"tags": ["remove-cell"]}\n\n---\nmath:\n' + "\n".join(lines) + "\n---\n\n+++\n"


def chapters(book_dir: Path) -> list[Path]:
    """The chapters that are notebooks (a jupytext header)."""
    return sorted(p for p in Path(book_dir).glob("*.md") if p.read_text(encoding="utf-8").startswith("---\njupytext:"))


def with_macro_cell(text: str, macros: dict[str, str]) -> str:
    """``text`` with its macro cell (right after the jupytext header) up to date."""
    header = _HEADER_END.match(text)
    if header is None:
        raise ValueError("a chapter must start with its jupytext header")
    body = text[header.end() :]
    current = _CELL.match(body)
    if current is not None:
        body = body[current.end() :]
    return text[: header.end()] + macro_cell(macros) + body


def stale(book_dir: Path, config: Path | None = None) -> list[Path]:
    macros = book_macros(config)
    return chapter_rewrite.stale(chapters(book_dir), lambda text: with_macro_cell(text, macros))


def update(book_dir: Path, config: Path | None = None) -> list[Path]:
    macros = book_macros(config)
    return chapter_rewrite.update(chapters(book_dir), lambda text: with_macro_cell(text, macros))


def main(argv=None) -> int:
    return chapter_rewrite.main(
        argv,
        __doc__.splitlines()[0],
        update=update,
        stale=stale,
        what="macro cell",
        fix="run python -m lora_book.macros --update book",
    )


if __name__ == "__main__":
    raise SystemExit(main())
