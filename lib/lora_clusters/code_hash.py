"""Hashes of source code: of a folder, and of the modules a piece of code uses.

Two things in the book must notice when code changed, and only the code that matters:

- a chapter's outputs (the execution cache) depend on the modules of ``lora_clusters``
  its code cells import, and on the modules *those* import, transitively;
- a stored result (:mod:`lora_clusters.store`) depends on the modules that computed it.

:func:`module_closure` finds those modules by reading the sources (every ``import``
statement, also those inside functions, so that a lazy import counts as a use): nothing
is imported, so it is fast and safe on a copy of the package.  :func:`module_hashes`
gives each module's content hash and :func:`combined_hash` one hash for a set of them.
Editing ``plots`` therefore changes the hash of every chapter that draws, and of no
stored training run; editing the toy trainer changes Chapter 6's and its results' only.

:func:`folder_hash` is the one hash of a whole folder (the build tooling uses it).
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "PACKAGE",
    "combined_hash",
    "file_hash",
    "folder_hash",
    "imported_modules",
    "module_closure",
    "module_hashes",
    "package_modules",
]

#: the package whose modules are followed
PACKAGE = "lora_clusters"
_HASH_DIGITS = 16


def _package_dir() -> Path:
    return Path(__file__).resolve().parent


def file_hash(path: Path) -> str:
    """SHA-256 (first 16 hex digits) of a file's bytes, line ends normalised (a checkout
    on Windows hashes like one on Linux)."""
    return hashlib.sha256(Path(path).read_bytes().replace(b"\r\n", b"\n")).hexdigest()[:_HASH_DIGITS]


def folder_hash(folder: Path) -> str:
    """One hash of every file under ``folder`` (relative paths and contents, in path
    order); compiled caches (``__pycache__``, ``.pyc``) are skipped."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if "__pycache__" in path.parts or path.suffix == ".pyc":
            continue
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes().replace(b"\r\n", b"\n"))
        digest.update(b"\0")
    return digest.hexdigest()[:_HASH_DIGITS]


def package_modules(package_dir: Path | None = None) -> dict[str, Path]:
    """Every module of the package at ``package_dir`` (default: this one), by dotted name
    (``lora_clusters.nets.toy``; a package by its ``__init__.py``)."""
    package_dir = _package_dir() if package_dir is None else Path(package_dir)
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        parts = list(path.relative_to(package_dir).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join([PACKAGE, *parts])] = path
    return modules


def _resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    """The absolute name of ``from <level dots><target> import ...`` inside ``module``."""
    if level == 0:
        return target or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, target] if target else base)


def imported_modules(source: str, module: str = "", is_package: bool = False, known=None) -> set[str]:
    """The modules of the package that ``source`` imports (anywhere in it, lazily or not).

    ``module`` is the dotted name of the code (for relative imports); ``known`` the
    package's module names, which tells ``from pkg import submodule`` (a module) from
    ``from module import name`` (a name in a module).  A package's ``__init__`` counts
    as used by the import of any module inside it."""
    known = set(package_modules()) if known is None else set(known)
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            origin = _resolve(module, is_package, node.level, node.module)
            names = [origin] + [f"{origin}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name in known:
                found.add(name)
    # importing a.b.c runs a/__init__ and a/b/__init__ first
    for name in list(found):
        parts = name.split(".")
        found.update(".".join(parts[:k]) for k in range(1, len(parts)) if ".".join(parts[:k]) in known)
    return found


def module_closure(start: Iterable[str], package_dir: Path | None = None, *, stop: Iterable[str] = ()) -> set[str]:
    """``start`` (module names of the package) and every module of the package they
    import, transitively; modules named in ``stop`` are neither included nor followed."""
    modules = package_modules(package_dir)
    stop = set(stop)
    unknown = [name for name in start if name not in modules]
    if unknown:
        raise ValueError(f"start must name modules of {PACKAGE}, got unknown {unknown}")
    seen, todo = set(), list(start)
    while todo:
        name = todo.pop()
        if name in seen or name in stop:
            continue
        seen.add(name)
        path = modules[name]
        todo.extend(imported_modules(path.read_text(encoding="utf-8"), name, path.name == "__init__.py", modules))
    return seen


def module_hashes(names: Iterable[str], package_dir: Path | None = None) -> dict[str, str]:
    """The content hash of each named module, in name order."""
    modules = package_modules(package_dir)
    return {name: file_hash(modules[name]) for name in sorted(names)}


def combined_hash(hashes: dict[str, str]) -> str:
    """One hash of a ``{module: hash}`` mapping (names included: a module that joins or
    leaves the set changes it)."""
    text = "\n".join(f"{name} {digest}" for name, digest in sorted(hashes.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:_HASH_DIGITS]
