"""Content hash of the science package ``lora_clusters``, written into every chapter.

jupyter-cache decides whether a chapter must re-run from its code cells only, so a
change in ``lib/`` alone would leave stale outputs in the cache.  Every chapter
therefore starts with a hidden cell ``LIB_FINGERPRINT = "<hash>"``; ``make book``
runs ``python -m lora_book.fingerprint --update book`` first, which rewrites
that line when the library changed, and the changed cell makes the cache re-execute
exactly the chapters that use the library.  ``--check`` exits with status 1 when a
chapter carries a stale fingerprint (the tests use it).
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

from . import chapter_rewrite

PATTERN = re.compile(r'^LIB_FINGERPRINT = "([0-9a-f]*)"', re.MULTILINE)
#: files of the package that compute nothing a chapter outputs: the kernel extension
#: that lets JupyterLab show glued numbers in the prose (it reads outputs, never writes)
NOT_HASHED = frozenset({"glued.py"})


def package_dir() -> Path:
    """The folder of :mod:`lora_clusters` (the science package; build tooling lives
    in :mod:`lora_book` and is not hashed)."""
    import lora_clusters

    return Path(lora_clusters.__file__).resolve().parent


def lib_fingerprint(root: Path | None = None) -> str:
    """SHA-256 (first 16 hex digits) of every file of the science package (``root``,
    default :func:`package_dir`), in path order; compiled caches and :data:`NOT_HASHED`
    are skipped."""
    root = package_dir() if root is None else Path(root)
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if "__pycache__" in path.parts or path.suffix == ".pyc":
            continue
        if path.relative_to(root).as_posix() in NOT_HASHED:
            continue
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes().replace(b"\r\n", b"\n"))
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def chapters_with_fingerprint(book_dir: Path) -> list[Path]:
    return sorted(p for p in Path(book_dir).glob("*.md") if PATTERN.search(p.read_text()))


def _rewrite(current: str):
    return lambda text: PATTERN.sub(f'LIB_FINGERPRINT = "{current}"', text)


def stale_chapters(book_dir: Path, current: str | None = None) -> list[Path]:
    """Chapters whose fingerprint differs from ``current`` (default: the library's)."""
    current = lib_fingerprint() if current is None else current
    return chapter_rewrite.stale(chapters_with_fingerprint(book_dir), _rewrite(current))


def update(book_dir: Path, current: str | None = None) -> list[Path]:
    """Rewrite the fingerprint line of every stale chapter (nothing else); return them."""
    current = lib_fingerprint() if current is None else current
    return chapter_rewrite.update(chapters_with_fingerprint(book_dir), _rewrite(current))


def main(argv=None) -> int:
    return chapter_rewrite.main(
        argv,
        __doc__.splitlines()[0],
        update=update,
        stale=stale_chapters,
        what="fingerprint",
        fix=f"the library is {lib_fingerprint()}",
    )


if __name__ == "__main__":
    sys.exit(main())
