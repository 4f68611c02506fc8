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

import argparse
import hashlib
import re
import sys
from pathlib import Path

PATTERN = re.compile(r'^LIB_FINGERPRINT = "([0-9a-f]*)"', re.MULTILINE)


def package_dir() -> Path:
    """The folder of :mod:`lora_clusters` (the science package; build tooling lives
    in :mod:`lora_book` and is not hashed)."""
    import lora_clusters

    return Path(lora_clusters.__file__).resolve().parent


def lib_fingerprint(root: Path | None = None) -> str:
    """SHA-256 (first 16 hex digits) of every file of the science package (``root``,
    default :func:`package_dir`), in path order; compiled caches are skipped."""
    root = package_dir() if root is None else Path(root)
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if "__pycache__" in path.parts or path.suffix == ".pyc":
            continue
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes().replace(b"\r\n", b"\n"))
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def chapters_with_fingerprint(book_dir: Path) -> list[Path]:
    return sorted(p for p in Path(book_dir).glob("*.md") if PATTERN.search(p.read_text()))


def stale_chapters(book_dir: Path, current: str | None = None) -> list[Path]:
    """Chapters whose fingerprint differs from ``current`` (default: the library's)."""
    current = lib_fingerprint() if current is None else current
    return [p for p in chapters_with_fingerprint(book_dir) if PATTERN.search(p.read_text()).group(1) != current]


def update(book_dir: Path, current: str | None = None) -> list[Path]:
    """Rewrite the fingerprint line of every stale chapter (nothing else); return them."""
    current = lib_fingerprint() if current is None else current
    changed = []
    for path in stale_chapters(book_dir, current):
        path.write_text(PATTERN.sub(f'LIB_FINGERPRINT = "{current}"', path.read_text()))
        changed.append(path)
    return changed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("book_dir", type=Path)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--update", action="store_true", help="rewrite stale fingerprints")
    mode.add_argument("--check", action="store_true", help="exit 1 if a chapter is stale")
    args = parser.parse_args(argv)
    if args.update:
        for path in update(args.book_dir):
            print(f"fingerprint updated: {path}")
        return 0
    stale = stale_chapters(args.book_dir)
    for path in stale:
        print(f"stale fingerprint: {path} (library is {lib_fingerprint()})")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
