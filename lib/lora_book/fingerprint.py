"""Each chapter's fingerprint: a hash of the library code the chapter uses.

jupyter-cache decides whether a chapter must re-run from its code cells only, so a
change in ``lib/`` alone would leave stale outputs in the cache.  Every chapter
therefore starts with a hidden cell ``LIB_FINGERPRINT = "<hash>"``, the hash of the
modules of :mod:`lora_clusters` that its code cells import, and of the modules those
import, transitively (:func:`lora_clusters.code_hash.module_closure`).  ``make book``
runs ``python -m lora_book.fingerprint --update book`` first, which rewrites that line
when one of those modules changed; the changed cell makes the cache re-execute exactly
the chapters that use the changed code (an edit of the toy trainer re-runs Chapter 6
only; an edit of a module no chapter imports re-runs nothing).  ``--check`` exits with
status 1 when a chapter carries a stale fingerprint (the tests use it).

The build tooling, :mod:`lora_book`, is not part of any fingerprint.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from lora_clusters import code_hash

from . import chapter_rewrite

PATTERN = re.compile(r'^LIB_FINGERPRINT = "([0-9a-f]*)"', re.MULTILINE)
#: lines of a code cell that are not Python (IPython magics and shell escapes)
_NOT_PYTHON = re.compile(r"^\s*[%!]")


def chapter_source(path: Path) -> str:
    """The Python of a chapter's code cells, magics left out."""
    from .cache import read_chapter

    cells = [c.source for c in read_chapter(Path(path)).cells if c.cell_type == "code"]
    return "\n".join(line for cell in cells for line in cell.splitlines() if not _NOT_PYTHON.match(line))


def chapter_modules(path: Path, package_dir: Path | None = None) -> set[str]:
    """The modules of :mod:`lora_clusters` a chapter uses: those its code imports and,
    transitively, those they import."""
    known = code_hash.package_modules(package_dir)
    return code_hash.module_closure(code_hash.imported_modules(chapter_source(path), known=known), package_dir)


def chapter_module_hashes(path: Path, package_dir: Path | None = None) -> dict[str, str]:
    """``{module: content hash}`` of :func:`chapter_modules`."""
    return code_hash.module_hashes(chapter_modules(path, package_dir), package_dir)


def chapter_fingerprint(path: Path, package_dir: Path | None = None) -> str:
    """The hash a chapter's ``LIB_FINGERPRINT`` line must carry."""
    return code_hash.combined_hash(chapter_module_hashes(path, package_dir))


def recorded_fingerprint(path: Path) -> str | None:
    """The hash the chapter's ``LIB_FINGERPRINT`` line carries now (None without one)."""
    match = PATTERN.search(Path(path).read_text(encoding="utf-8"))
    return match[1] if match else None


def chapters_with_fingerprint(book_dir: Path) -> list[Path]:
    return sorted(p for p in Path(book_dir).glob("*.md") if PATTERN.search(p.read_text(encoding="utf-8")))


def _rewrite(path: Path, package_dir: Path | None):
    current = chapter_fingerprint(path, package_dir)
    return lambda text: PATTERN.sub(f'LIB_FINGERPRINT = "{current}"', text)


def stale_chapters(book_dir: Path, package_dir: Path | None = None) -> list[Path]:
    """Chapters whose fingerprint line differs from the hash of the code they use."""
    return [p for p in chapters_with_fingerprint(book_dir) if chapter_rewrite.stale([p], _rewrite(p, package_dir))]


def update(book_dir: Path, package_dir: Path | None = None) -> list[Path]:
    """Rewrite the fingerprint line of every stale chapter (nothing else); return them."""
    return [p for p in chapters_with_fingerprint(book_dir) if chapter_rewrite.update([p], _rewrite(p, package_dir))]


def main(argv=None) -> int:
    return chapter_rewrite.main(
        argv,
        __doc__.splitlines()[0],
        update=update,
        stale=stale_chapters,
        what="fingerprint",
        fix="the code it uses changed: run `make book`",
    )


if __name__ == "__main__":
    sys.exit(main())
