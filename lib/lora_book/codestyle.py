"""Code cells as readers see them: no line wider than the page's code column.

At 1280 px the book theme's code column holds 75 characters of its monospace font
(measured in Chromium: 666 px at 8.43 px a character, less the padding); a longer line
is cut off at the edge of the cell.  ``make lint`` runs

    python -m lora_book.codestyle book

which fails on any code-cell line longer than :data:`CODE_COLUMN`, naming the chapter,
the cell and the line, so that it is shortened by hand (an automatic formatter breaks
lines with trailing comments into unreadable shapes); the same holds for the plain code
blocks of every page, whose closing fences must stand alone.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

CODE_COLUMN = 74  # characters that fit the code column at 1280 px, with a margin of one


def too_wide(source: str) -> list[str]:
    """The lines of ``source`` longer than the code column."""
    return [line for line in source.splitlines() if len(line) > CODE_COLUMN]


def problems_in(path: Path) -> list[str]:
    """One line per code-cell line of chapter ``path`` wider than the code column."""
    import jupytext

    notebook = jupytext.reads(path.read_text(), fmt="md:myst")
    return [
        f"{path.name}, code cell {index}: {len(line)} > {CODE_COLUMN} characters: {line.strip()}"
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code"
        for line in too_wide(cell.source)
    ]


def fence_problems(path: Path) -> list[str]:
    """Problems of the plain code blocks (```bash, ```python, ...) of any page: lines
    wider than the code column, and closing fences with text after them (which leave
    the block open and swallow the rest of the page)."""
    problems, fence, directive = [], None, False
    for number, line in enumerate(path.read_text().splitlines(), 1):
        stripped = line.strip()
        ticks = stripped[: len(stripped) - len(stripped.lstrip("`"))]
        if fence is None:
            if len(ticks) >= 3:
                # a directive (```{name}) holds prose and cells: only plain blocks count
                fence, directive = ticks, stripped[len(ticks) :].startswith("{")
            continue
        if ticks == fence:
            if stripped != fence and not directive:
                problems.append(f"{path.name}, line {number}: text after a closing fence: {stripped[:60]}")
            if stripped == fence or not directive:
                fence = None
        elif not directive and len(line) > CODE_COLUMN:
            problems.append(f"{path.name}, line {number}: {len(line)} > {CODE_COLUMN} characters: {stripped}")
    return problems


def chapters(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.md") if "code-cell" in p.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    problems = [p for path in chapters(args.folder) for p in problems_in(path)]
    problems += [p for path in sorted(args.folder.glob("*.md")) for p in fence_problems(path)]
    print("\n".join(problems) or f"no code-cell line wider than {CODE_COLUMN} characters")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
