"""The build tooling (lora_book) on temporary folders: fingerprint, cache housekeeping,
solution stripping.  Fast: no book is built."""

import shutil
import textwrap

import nbformat
import pytest
from jupyter_cache import get_cache
from jupyter_cache.base import CacheBundleIn

from lora_book import cache, fingerprint, solutions

CHAPTER = textwrap.dedent("""\
    ---
    jupytext:
      text_representation:
        extension: .md
        format_name: myst
        format_version: 0.13
    kernelspec:
      display_name: Python 3
      language: python
      name: python3
    ---

    # A chapter

    ```{code-cell} ipython3
    LIB_FINGERPRINT = "0000000000000000"
    x = 1
    ```
    """)


def test_fingerprint_hashes_the_package_files_and_nothing_else(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "a.py").write_text("A = 1\n")
    (package / "sub" / "b.py").write_text("B = 2\n")
    first = fingerprint.lib_fingerprint(package)
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0compiled")
    assert fingerprint.lib_fingerprint(package) == first  # compiled caches do not count
    (package / "sub" / "b.py").write_text("B = 3\n")
    assert fingerprint.lib_fingerprint(package) != first  # a subpackage change does
    (package / "sub" / "b.py").write_text("B = 2\n")
    (package / "style.mplstyle").write_text("axes.grid: True\n")
    assert fingerprint.lib_fingerprint(package) != first  # and so does a data file
    # the real one hashes lora_clusters, not the tooling
    assert fingerprint.package_dir().name == "lora_clusters"


def test_fingerprint_update_rewrites_only_stale_lines(tmp_path):
    book = tmp_path / "book"
    book.mkdir()
    (book / "stale.md").write_text(CHAPTER)
    (book / "current.md").write_text(CHAPTER.replace("0000000000000000", "abcdef0123456789"))
    (book / "plain.md").write_text("# no code\n")
    assert fingerprint.stale_chapters(book, "abcdef0123456789") == [book / "stale.md"]
    assert fingerprint.update(book, "abcdef0123456789") == [book / "stale.md"]
    assert (book / "stale.md").read_text() == CHAPTER.replace("0000000000000000", "abcdef0123456789")
    assert fingerprint.stale_chapters(book, "abcdef0123456789") == []
    assert (book / "plain.md").read_text() == "# no code\n"


def _project(tmp_path):
    """A one-chapter book with a jupyter-cache holding its current outputs and an old version's."""
    root = tmp_path / "project"
    (root / "book").mkdir(parents=True)
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: book/chapter\n")
    (root / "_config.yml").write_text("execute:\n  cache: execution_cache\n")
    (root / "book" / "intro.md").write_text("# Intro\n")
    chapter = root / "book" / "chapter.md"
    cache_path = root / "execution_cache"
    jc = get_cache(cache_path)
    for text in (CHAPTER.replace("x = 1", "x = 0"), CHAPTER):  # an old version, then the current one
        chapter.write_text(text)
        nb = cache.read_chapter(chapter)
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="ran\n")]
        jc.cache_notebook_bundle(CacheBundleIn(nb, str(chapter)), check_validity=False)
    return root, chapter


def test_cache_status_housekeeping_and_restored_database(tmp_path):
    root, chapter = _project(tmp_path)
    assert cache.chapter_paths(root) == [chapter]  # intro has no kernelspec: not a notebook
    (record,) = cache.status(root).values()
    assert record is not None
    executed = cache.executed_chapter(chapter, root / "execution_cache")
    assert [c.outputs[0]["text"] for c in executed.cells if c.cell_type == "code"] == ["ran\n"]

    db = root / "execution_cache" / "global.db"
    cache.before_build(root)
    assert len(get_cache(root / "execution_cache").list_cache_records()) == 2
    cache.after_build(root)  # the old version is pruned: the database changed, and is kept
    assert [r.pk for r in get_cache(root / "execution_cache").list_cache_records()] == [record]
    after_prune = db.read_bytes()
    cache.before_build(root)
    cache.status(root)  # reading touches nothing, but a build stamps access times:
    jc = get_cache(root / "execution_cache")
    jc.match_cache_notebook(cache.read_chapter(chapter))
    cache.after_build(root)  # nothing added or removed: the database bytes are put back
    assert db.read_bytes() == after_prune


def test_a_chapter_whose_code_changed_has_no_cached_outputs(tmp_path):
    root, chapter = _project(tmp_path)
    chapter.write_text(CHAPTER.replace("x = 1", "x = 2"))
    assert list(cache.status(root).values()) == [None]
    assert cache.executed_chapter(chapter, root / "execution_cache") is None
    shutil.rmtree(root / "execution_cache")
    assert cache.executed_chapter(chapter, root / "execution_cache") is None


def test_strip_solutions_on_a_small_document():
    text = (
        "intro\n\n````{exercise}\n:label: e1\nDo it.\n````\n\n```{solution-start} e1\n:class: dropdown\n```\n\n"
        "Answer text.\n\n```{code-cell} ipython3\nx = 1\n```\n\n```{solution-end}\n```\n\n"
        ":::{solution} e1\nInline answer.\n:::\n\nafter\n"
    )
    out = solutions.strip_solutions(text)
    assert "Answer" not in out and "x = 1" not in out and "Inline" not in out
    assert "Do it." in out and out.startswith("intro") and out.rstrip().endswith("after")
    with pytest.raises(ValueError, match="solution-end"):
        solutions.strip_solutions("```{solution-start} e1\n```\nno end\n")


def test_strip_solutions_from_a_notebook_drops_gated_cells():
    nb = {
        "cells": [
            {
                "cell_type": "markdown",
                "source": "````{exercise}\n:label: e1\nDo it.\n````\n\n```{solution-start} e1\n```",
            },
            {"cell_type": "code", "source": "secret = 42", "outputs": []},
            {"cell_type": "markdown", "source": "```{solution-end}\n```\n\nAfter the solution."},
            {"cell_type": "code", "source": "public = 1", "outputs": []},
        ]
    }
    out = solutions.strip_solutions_from_notebook(nb)
    text = "".join(c["source"] for c in out["cells"])
    assert "secret" not in text and "public = 1" in text and "Do it." in text and "After the solution." in text
    assert "solution-start" not in text and "solution-end" not in text
