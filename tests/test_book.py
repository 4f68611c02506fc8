"""The book: builds from scratch with -n -W, and the committed cache is current."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lora_clusters import bookcache, fingerprint

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.book


def test_every_chapter_carries_the_current_lib_fingerprint():
    chapters = bookcache.chapter_paths(ROOT)
    assert chapters, "no notebook chapters found in _toc.yml"
    assert set(fingerprint.chapters_with_fingerprint(ROOT / "book")) >= set(chapters)
    assert fingerprint.stale_chapters(ROOT / "book") == [], "run `make book` and commit the cache"


def test_committed_cache_holds_current_outputs_of_every_chapter():
    status = bookcache.status(ROOT)
    missing = [str(p.relative_to(ROOT)) for p, pk in status.items() if pk is None]
    assert not missing, f"no cached outputs for the current code of {missing}: run `make book` and commit execution_cache/"


@pytest.mark.xdist_group("kernels")
def test_book_builds_from_scratch_without_warnings(tmp_path):
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns(".venv", "_build", "execution_cache", ".git", "__pycache__", "*.egg-info", ".pytest_cache", "test-output")
    shutil.copytree(ROOT, src, ignore=ignore)
    jb = Path(sys.executable).with_name("jupyter-book")
    # cwd matters: the cache path in _config.yml is resolved against it
    proc = subprocess.run([str(jb), "build", ".", "-n", "-W", "--keep-going"], cwd=src, capture_output=True, text=True,
                          timeout=1200)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert (src / "execution_cache" / "global.db").exists(), "the build did not use a fresh cache"
    assert "Executing" in proc.stdout or "executing" in proc.stdout.lower()
    html = src / "_build" / "html"
    page = (html / "book" / "ch01_particles.html").read_text()
    # glued numbers are computed, e.g. W2 of a translation by a vector of length 0.5
    assert "0.500000" in page
    assert page.count("animation") > 0 and "data:image/png;base64" in page
    assert (html / "book" / "preface.html").exists() and (html / "book" / "bibliography.html").exists()
    glue = json.loads((src / "_build" / "jupyter_execute" / "book" / "ch01_particles.glue.json").read_text())
    assert glue["long_finite"]["data"]["text/plain"] == "True"
