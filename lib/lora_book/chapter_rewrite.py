"""What the chapter-maintenance tools share (:mod:`lora_book.fingerprint`,
:mod:`lora_book.macros`): each keeps one generated piece of every chapter up to date, as
a function ``text -> text`` that returns the text unchanged when it is current, and a
command line with ``--update`` (rewrite the stale chapters, nothing else) and
``--check`` (exit 1 when one is stale)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from pathlib import Path

Rewrite = Callable[[str], str]


def stale(paths: Iterable[Path], rewrite: Rewrite) -> list[Path]:
    """The chapters that ``rewrite`` would change."""
    return [p for p in paths if (text := p.read_text(encoding="utf-8")) != rewrite(text)]


def update(paths: Iterable[Path], rewrite: Rewrite) -> list[Path]:
    """Rewrite the stale chapters (a current one is not touched); return them."""
    changed = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        if (new := rewrite(text)) != text:
            path.write_text(new, encoding="utf-8")
            changed.append(path)
    return changed


def main(
    argv,
    description: str,
    *,
    update: Callable[[Path], list[Path]],
    stale: Callable[[Path], list[Path]],
    what: str,
    fix: str,
) -> int:
    """``BOOK_DIR --update | --check`` for a tool that keeps ``what`` current; ``fix``
    is printed after every stale chapter."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("book_dir", type=Path)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--update", action="store_true", help=f"rewrite every stale {what}")
    mode.add_argument("--check", action="store_true", help=f"exit 1 if a chapter's {what} is stale")
    args = parser.parse_args(argv)
    if args.update:
        for path in update(args.book_dir):
            print(f"{what} updated: {path}")
        return 0
    outdated = stale(args.book_dir)
    for path in outdated:
        print(f"{what} missing or stale: {path} ({fix})")
    return 1 if outdated else 0
