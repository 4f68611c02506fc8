"""Solutions of the exercises, and the student version of the book without them.

With ``LORA_BOOK_STUDENT=1`` in the environment (``make student-book``) the Sphinx
extension removes every solution from the pages, from the downloadable notebooks
and from the downloadable sources, with the functions below.

``python -m lora_book.solutions FILE.md`` prints a chapter without its solutions.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

STUDENT_ENV = "LORA_BOOK_STUDENT"

_FENCE = re.compile(r"^(`{3,}|:{3,})\s*\{(solution|solution-start|solution-end)\}")


def strip_solutions(text: str) -> str:
    """MyST text without its solutions: every ``{solution}`` directive and every
    ``{solution-start}`` ... ``{solution-end}`` block (fences included) is removed."""
    out, lines, i = [], text.splitlines(keepends=True), 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            out.append(lines[i])
            i += 1
            continue
        fence, kind = match.group(1), match.group(2)
        if kind == "solution-end":
            raise ValueError(f"line {i + 1}: solution-end without a solution-start")
        # skip to the closing fence of this directive (same character, at least as long)
        closing = re.compile(rf"^{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        i += 1
        while i < len(lines) and not closing.match(lines[i]):
            i += 1
        i += 1
        if kind == "solution-start":
            while i < len(lines) and not (_FENCE.match(lines[i]) and _FENCE.match(lines[i]).group(2) == "solution-end"):
                i += 1
            if i == len(lines):
                raise ValueError("solution-start without a solution-end")
            end_fence = _FENCE.match(lines[i]).group(1)
            closing = re.compile(rf"^{re.escape(end_fence[0])}{{{len(end_fence)},}}\s*$")
            i += 1
            while i < len(lines) and not closing.match(lines[i]):
                i += 1
            i += 1
    return re.sub(r"\n{3,}", "\n\n", "".join(out))


def strip_solutions_from_notebook(nb: dict) -> dict:
    """The same for a notebook (as a dict): cells inside a gated solution are
    dropped, and the solution parts of the markdown cells that open or close one."""
    cells, inside = [], False
    for cell in nb["cells"]:
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        if cell["cell_type"] != "markdown":
            if not inside:
                cells.append(cell)
            continue
        text = ("```{solution-start} _\n```\n" if inside else "") + source
        starts = len(re.findall(r"^(?:`{3,}|:{3,})\s*\{solution-start\}", text, re.MULTILINE))
        ends = len(re.findall(r"^(?:`{3,}|:{3,})\s*\{solution-end\}", text, re.MULTILINE))
        inside = starts > ends
        if inside:
            text += "\n```{solution-end}\n```\n"
        kept = strip_solutions(text).strip("\n")
        if kept:
            cells.append({**cell, "source": kept})
    return {**nb, "cells": cells}


def student_mode() -> bool:
    return os.environ.get(STUDENT_ENV, "").strip().lower() in {"1", "true", "yes"}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m lora_book.solutions CHAPTER.md")
    sys.stdout.write(strip_solutions(Path(sys.argv[1]).read_text()))
