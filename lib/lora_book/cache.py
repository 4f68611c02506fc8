"""Checks and housekeeping of the committed jupyter-cache execution cache.

``python -m lora_book.cache status`` lists each chapter and whether the cache
holds outputs for its current code.  ``make book`` wraps the build in
``before-build`` and ``after-build``: the latter deletes records that no chapter
matches any more (old versions) and that were never committed, so the cache does not
grow with every edit while no committed record is ever lost by a build (``python -m
lora_book.cache prune``, ``make cache-prune``, removes the stale committed ones too,
before a commit), and, when the build executed nothing, puts back the database file as it was
(jupyter-cache stamps an "accessed" time on every match, which would otherwise leave
the committed ``global.db`` modified after each build of a fresh clone).
"""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path

import yaml

from .repository import ROOT


def chapter_paths(root: Path = ROOT) -> list[Path]:
    """Chapters listed in ``_toc.yml`` that are notebooks (have a kernelspec)."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))
            walk(entry.get("chapters"))

    walk(toc.get("chapters"))
    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    paths = [root / f"{f}.md" for f in files]
    return [p for p in paths if p.exists() and "kernelspec:" in p.read_text().split("\n---", 1)[0]]


def read_chapter(path: Path):
    """The notebook myst-nb builds from a chapter (the form jupyter-cache hashes)."""
    from myst_nb.core.read import read_myst_markdown_notebook
    from myst_parser.config.main import MdParserConfig

    return read_myst_markdown_notebook(path.read_text(), MdParserConfig(), path=str(path))


def cache_dir(root: Path = ROOT) -> Path:
    config = yaml.safe_load((root / "_config.yml").read_text())
    return root / config["execute"]["cache"]


def _record_ids(cache) -> dict[str, int]:
    """Cache record id by notebook hash."""
    return {r.hashkey: r.pk for r in cache.list_cache_records()}


def _record_id(cache, notebook, ids: dict[str, int]) -> int | None:
    # hashed the way jupyter-cache does and looked up by hash: read-only, whereas
    # ``match_cache_notebook`` would stamp an access time into the database
    return ids.get(cache.create_hashed_notebook(notebook)[1])


def stored_notebook(cache, pk: int):
    """The executed notebook of cache record ``pk``, read from its file: unlike
    ``get_cache_bundle``, which stamps an access time into the database, this leaves
    the committed ``global.db`` as it was."""
    import nbformat

    record = cache.get_cache_record(pk)
    return nbformat.read(cache._get_notebook_path_cache(record.hashkey, raise_on_missing=True), as_version=4)


def status(root: Path = ROOT) -> dict[Path, int | None]:
    """For each chapter, the id of the cache record matching its current code, or None."""
    from jupyter_cache import get_cache

    cache = get_cache(cache_dir(root))
    ids = _record_ids(cache)
    return {path: _record_id(cache, read_chapter(path), ids) for path in chapter_paths(root)}


def executed_chapter(path: Path, cache_path: Path):
    """The chapter at ``path`` as a notebook (an ``nbformat`` node) whose code cells
    carry the outputs the cache at ``cache_path`` holds for its current code; None
    when it holds none.  The cache stores code cells only; this puts their outputs
    back into the whole chapter, hidden cells included (unlike myst-nb's copy under
    ``jupyter_execute/``, which drops the outputs of removed cells)."""
    from jupyter_cache import get_cache

    if not (Path(cache_path) / "global.db").exists():
        return None
    cache = get_cache(cache_path)
    source = read_chapter(Path(path))
    pk = _record_id(cache, source, _record_ids(cache))
    if pk is None:
        return None
    return source if put_outputs(source, stored_notebook(cache, pk)) else None


def put_outputs(chapter, executed) -> bool:
    """Give the code cells of ``chapter`` the outputs and execution counts of the code
    cells of ``executed`` (the same code, run); False, and nothing changed, when the
    two do not have the same number of code cells."""
    code = [c for c in chapter.cells if c.cell_type == "code"]
    done = [c for c in executed.cells if c.cell_type == "code"]
    if len(code) != len(done):
        return False
    for cell, ran in zip(code, done):
        cell.outputs, cell.execution_count = ran.outputs, ran.get("execution_count")
    return True


def committed_hashes(root: Path = ROOT) -> set[str] | None:
    """Hash keys of the records in the cache database committed at git HEAD; None when
    that cannot be read (not a git checkout, git missing, database not committed)."""
    import sqlite3
    import subprocess
    import tempfile

    database = (cache_dir(root) / "global.db").relative_to(root).as_posix()
    try:
        data = subprocess.run(
            ["git", "-C", str(root), "show", f"HEAD:{database}"], capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    with tempfile.TemporaryDirectory() as folder:
        copy_path = Path(folder) / "global.db"
        copy_path.write_bytes(data)
        with sqlite3.connect(copy_path) as connection:
            return {row[0] for row in connection.execute("SELECT hashkey FROM nbcache")}


def prune(root: Path = ROOT, *, keep_committed: bool = False) -> list[int]:
    """Remove cache records that match no current chapter; returns their ids.

    With ``keep_committed`` (what every build does) records that are in the database
    committed at git HEAD are kept, stale or not, and nothing is removed when that
    database cannot be read: a reader who edits a chapter on a laptop must never lose
    a committed record (a GPU chapter's cannot be rebuilt there).  Without it (``make
    cache-prune``, before committing) every stale record goes.
    """
    from jupyter_cache import get_cache

    keep = {pk for pk in status(root).values() if pk is not None}
    committed = committed_hashes(root) if keep_committed else set()
    if committed is None:
        return []
    cache = get_cache(cache_dir(root))
    removed = [r.pk for r in cache.list_cache_records() if r.pk not in keep and r.hashkey not in committed]
    for pk in removed:
        cache.remove_cache(pk)
    return removed


def prune_results(root: Path = ROOT) -> list[Path]:
    """Remove the stored results (``results/``) that no chapter's current cached outputs
    show, except paper-scale ones, which only a GPU can compute again; returns the
    removed ``.json`` files (``make cache-prune``, before a commit, with :func:`prune`)."""
    from jupyter_cache import get_cache

    from lora_clusters import scale, store

    cache = get_cache(cache_dir(root))
    used = set()
    for pk in status(root).values():
        if pk is not None:
            used |= {(u["experiment"], u["file"]) for u in outputs_with(stored_notebook(cache, pk), store.MIME)}
    removed = []
    for record in store.records(folder=root / "results"):
        if (record.experiment, record.path.name) in used or record.scale == scale.PAPER:
            continue
        record.path.with_suffix(".npz").unlink(missing_ok=True)
        record.path.unlink()
        removed.append(record.path)
    return removed


def _records(root: Path) -> list[tuple[int, str]]:
    from jupyter_cache import get_cache

    return sorted((r.pk, r.hashkey) for r in get_cache(cache_dir(root)).list_cache_records())


def _backup(root: Path) -> Path:
    return root / "_build" / "execution_cache_global.db"


def before_build(root: Path = ROOT) -> None:
    """Keep a copy of the cache database and the list of its records."""
    db = cache_dir(root) / "global.db"
    backup = _backup(root)
    backup.parent.mkdir(parents=True, exist_ok=True)
    if db.exists():
        shutil.copy2(db, backup)
        backup.with_suffix(".records").write_text(repr(_records(root)))


def after_build(root: Path = ROOT) -> None:
    """Prune stale records that were never committed; if the build added or removed
    none, restore the database bytes."""
    for pk in prune(root, keep_committed=True):
        print(f"removed stale cache record {pk}")
    backup = _backup(root)
    records = backup.with_suffix(".records")
    if backup.exists() and records.exists() and records.read_text() == repr(_records(root)):
        shutil.copy2(backup, cache_dir(root) / "global.db")


@contextmanager
def environment(values: dict[str, str]):
    """Run the block with the environment variables ``values`` set, then put back each
    one as it was (unset if it was unset)."""
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def execute(paths, scale: str, root: Path = ROOT) -> list[int]:
    """Execute each chapter at ``scale`` (``LORA_BOOK_SCALE`` for its kernel) and store
    its outputs in the cache, replacing the record of the same code: how ``make gpu``
    refreshes the GPU chapters.  Returns the record ids."""
    import time

    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn
    from nbclient import NotebookClient

    from lora_clusters import progress, static_panels
    from lora_clusters.scale import ENV, check

    scale = check(scale)
    cache = get_cache(cache_dir(root))
    records = []
    # the outputs go to the site: no progress bars in them, and panels carry their
    # static copies
    with environment({ENV: scale, progress.ENV: "off", static_panels.ENV: "1"}):
        for path in map(Path, paths):
            if not path.exists():
                raise FileNotFoundError(f"no chapter {path}")
            nb = read_chapter(path)
            # execute a copy: nbclient rewrites the kernelspec, which is part of the record
            # key; only the outputs are carried back
            run = copy.deepcopy(nb)
            start = time.perf_counter()
            print(f"executing {path} at scale {scale}", flush=True)
            folder = str(path.resolve().parent)
            NotebookClient(run, timeout=None, kernel_name="python3", resources={"metadata": {"path": folder}}).execute()
            seconds = time.perf_counter() - start
            put_outputs(nb, run)
            record = cache.cache_notebook_bundle(
                CacheBundleIn(nb, str(path.resolve()), data={"execution_seconds": seconds}),
                check_validity=False,
                overwrite=True,
            )
            print(f"{path}: executed in {seconds:.0f} s, cache record {record.pk}")
            records.append(record.pk)
    return records


# --------------------------------------------------------------------------------------
# make cache-status: per chapter, fresh or stale, and why
# --------------------------------------------------------------------------------------
def _latest_record_notebook(cache, path: Path):
    """The executed notebook of the newest cache record of the chapter at ``path``
    (any version of its code), or None."""
    mine = [r for r in cache.list_cache_records() if Path(r.uri).resolve() == Path(path).resolve()]
    if not mine:
        return None
    newest = max(mine, key=lambda r: r.created)
    return stored_notebook(cache, newest.pk)


def outputs_with(nb, mime: str) -> list[dict]:
    """The data of type ``mime`` of every output of an executed notebook (an nbformat
    node or the plain dict it was read from)."""
    return [
        output["data"][mime]
        for cell in nb["cells"]
        if cell["cell_type"] == "code"
        for output in cell.get("outputs", [])
        if mime in output.get("data", {})
    ]


def _short(module: str) -> str:
    """``lora_clusters.nets.toy`` -> ``nets/toy.py`` (how a developer names the file)."""
    parts = module.split(".")[1:] or ["__init__"]
    return "/".join(parts) + ".py"


def chapter_status(path: Path, root: Path = ROOT, *, package_dir: Path | None = None, cache=None) -> dict:
    """Whether a chapter's cached outputs are current, and why not.

    Returns ``fresh`` (bool), ``reasons`` (what made it stale: changed modules of the
    code it uses, or code cells edited since it ran), and ``results``: the stored
    results (:mod:`lora_clusters.store`) its last execution used, each with its scale
    and the modules changed since it was computed."""
    from jupyter_cache import get_cache

    from lora_clusters import provenance, store

    from . import fingerprint

    cache = get_cache(cache_dir(root)) if cache is None else cache
    ids = _record_ids(cache)
    matching = _record_id(cache, read_chapter(path), ids)
    executed = stored_notebook(cache, matching) if matching else _latest_record_notebook(cache, path)
    reasons = []
    now = fingerprint.chapter_module_hashes(path, package_dir)
    then = (provenance.find_record(executed) or {}).get("modules") if executed is not None else None
    if then is not None:
        changed = sorted(m for m in now if then.get(m) != now[m])
        reasons += [f"{_short(m)} changed" for m in changed]
    elif fingerprint.recorded_fingerprint(path) != fingerprint.chapter_fingerprint(path, package_dir):
        reasons.append("library code it uses changed")
    if matching is None and not reasons:
        reasons.append("its code cells changed since it ran" if executed is not None else "never executed")
    results = []
    for used in outputs_with(executed, store.MIME) if executed is not None else []:
        record_path = root / "results" / used["experiment"] / used["file"]
        if record_path.exists():
            changed = store.Record.read(record_path).changed_modules(package_dir)
        else:
            changed = ["(stored result missing)"]
        results.append({**used, "changed": changed})
    return {"fresh": not reasons, "reasons": reasons, "results": results}


def status_lines(root: Path = ROOT, *, package_dir: Path | None = None) -> list[str]:
    """One line per chapter, what ``make cache-status`` prints."""
    from jupyter_cache import get_cache

    cache = get_cache(cache_dir(root))
    lines = []
    for path in chapter_paths(root):
        info = chapter_status(path, root, package_dir=package_dir, cache=cache)
        line = f"{path.stem:<30} " + ("fresh" if info["fresh"] else "STALE: " + "; ".join(info["reasons"]))
        if info["results"]:
            parts = []
            for r in info["results"]:
                state = "fresh" if not r["changed"] else "stale, " + ", ".join(map(_short, r["changed"])) + " changed"
                parts.append(f"{r['experiment']}/{r['name']} at scale {r['scale']} ({state})")
            line += " | results: " + "; ".join(parts)
        lines.append(line)
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["status", "report", "prune", "before-build", "after-build", "execute"])
    parser.add_argument("chapters", nargs="*", type=Path, help="execute: the chapters to execute")
    parser.add_argument("--scale", default="gpu", help="execute: smoke, cpu or gpu")
    args = parser.parse_args(argv)
    if args.command == "execute":
        execute(args.chapters, args.scale)
        return 0
    if args.command == "prune":
        for pk in prune():
            print(f"removed stale cache record {pk}")
        for path in prune_results():
            print(f"removed stored result no chapter shows: {path.relative_to(ROOT)}")
        return 0
    if args.command == "before-build":
        before_build()
        return 0
    if args.command == "after-build":
        after_build()
        return 0
    if args.command == "report":
        print("\n".join(status_lines()))
        return 0
    missing = 0
    for path, pk in status().items():
        print(f"{path.relative_to(ROOT)}: {f'cached (record {pk})' if pk else 'NOT CACHED'}")
        missing += pk is None
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
