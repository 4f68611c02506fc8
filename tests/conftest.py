import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

# The suite never writes into the committed results/: results computed by the tests
# (chapters at the smoke scale, the store's own tests) go to a scratch folder, which the
# kernels the tests start inherit.  And torch runs one thread per process: the tests run
# two at a time on two cores.
os.environ.setdefault("LORA_BOOK_RESULTS", tempfile.mkdtemp(prefix="lora-book-results-"))
os.environ.setdefault("LORA_BOOK_TORCH_THREADS", "1")


@pytest.fixture
def package_copy(tmp_path, monkeypatch):
    """A scratch copy of lora_clusters whose sources the code hashes read (edit it to
    see what goes stale)."""
    import shutil

    from lora_clusters import code_hash

    copy = tmp_path / "lora_clusters"
    shutil.copytree(Path(code_hash.__file__).resolve().parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(code_hash, "_package_dir", lambda: copy)
    return copy


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (site_tools.chromium), one per test file: closed when its file
    is done (make test runs a whole file on one worker), so that a test that drives
    Playwright itself (the PDF's printing) never meets another one running."""
    from playwright.sync_api import sync_playwright

    from site_tools import chromium

    with sync_playwright() as p:
        instance = chromium(p)
        yield instance
        instance.close()
