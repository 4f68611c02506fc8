"""A chapter as a reader meets it in JupyterLab (``make lab``): a real JupyterLab server
with jupytext and jupyterlab-myst, driven in headless Chromium.

Opened, the chapter must show rendered MyST (theorem boxes, exercises, admonitions,
equation references) with the book's macros and no math error; run, the numbers its
prose quotes must appear where they belong, equal to the site's; saved, the file on
disk must not change.  The glued values come from the kernel (``lora_clusters.glued``), the
expected texts from the committed execution cache.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from lora_book import cache as bookcache
from lora_book.glued import EXPRESSION
from lora_clusters.glued import format_glued

pytestmark = pytest.mark.book
ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "test-output" / "screenshots"
CHAPTER = "ch02_stability"  # theorems, exercises, equation references, glued numbers; runs in seconds
# MyST source that must never reach the reader's eyes
RAW_MYST = (":::{", "```{", "{prf:", "{eq}`", "{cite", "{ref}`", "{numref}`", "{glue", "{eval}", "\\Vt", "\\Kt")

LAB_OVERRIDES = {
    # as `make lab`: chapters open as notebooks
    "@jupyterlab/docmanager-extension:plugin": {
        "defaultViewers": {"markdown": "Jupytext Notebook", "myst": "Jupytext Notebook"}
    },
    # every cell in the page, so that the test sees the whole chapter
    "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false"},
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _expected_texts(chapter: Path) -> dict[str, str]:
    """Every ``{eval}`glued(...)``` of the chapter -> the text the site shows for it."""
    import re

    executed = bookcache.executed_chapter(chapter, bookcache.cache_dir())
    assert executed is not None, f"{chapter.name} has no record in the committed cache"
    values = {}
    for cell in executed.cells:
        for output in cell.get("outputs", []):
            scrapbook = output.get("metadata", {}).get("scrapbook")
            if scrapbook:
                values[scrapbook["name"]] = output["data"][scrapbook.get("mime_prefix", "") + "text/plain"]
    expected = {}
    for expression in re.findall(r"\{eval\}`([^`]+)`", chapter.read_text()):
        match = EXPRESSION.match(expression)
        assert match, expression
        expected[expression] = format_glued(values[match["key"]], match["fmt"] or "")
    return expected


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on a copy of book/, as `make lab` starts it."""
    folder = tmp_path_factory.mktemp("lab") / "book"
    shutil.copytree(ROOT / "book", folder)
    settings = tmp_path_factory.mktemp("lab-settings")
    (settings / "overrides.json").write_text(json.dumps(LAB_OVERRIDES))
    port, token = _free_port(), "test-token"
    log = open(tmp_path_factory.mktemp("lab-log") / "lab.log", "w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            f"--ServerApp.port={port}",
            "--ServerApp.ip=127.0.0.1",
            f"--IdentityProvider.token={token}",
            "--ServerApp.open_browser=False",
            f"--ServerApp.root_dir={folder}",
            f"--LabApp.app_settings_dir={settings}",
            f"--LabApp.workspaces_dir={tempfile.mkdtemp()}",
            "--allow-root",  # CI runs as root
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "JUPYTER_PLATFORM_DIRS": "1"},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not start")
        yield folder, base, token
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


# what the state of the rendered markdown cells is read from
SELECTORS = {
    "errors": ", ".join(
        f".jp-MarkdownCell {s}"
        for s in (".katex-error", "mjx-merror", '[data-mime-type="application/vnd.jupyter.stderr"]')
    ),
    "theorems": ".jp-MarkdownCell .myst .proof, .jp-MarkdownCell .myst [class*='proof']",
    "admonitions": ".jp-MarkdownCell .myst aside, .jp-MarkdownCell .myst .admonition",
    "unknown": ".jp-MarkdownCell .myst details summary",
    # jupyterlab-myst marks a reference or citation it cannot resolve with a warning icon
    "unresolved": ".jp-MarkdownCell .myst [title='Cross Reference Not Found'], "
    ".jp-MarkdownCell .myst [title='Citation Not Found']",
    "figures": ".jp-MarkdownCell .myst figure",
}


def _markdown_state(page) -> dict:
    return page.evaluate(
        """(sel) => {
      const cells = [...document.querySelectorAll('.jp-MarkdownCell')];
      const rendered = cells.map(c => c.querySelector('.myst')).filter(Boolean);
      const codes = rendered.flatMap(r => [...r.querySelectorAll('code')].map(c => c.innerText));
      return {
        cells: cells.length,
        rendered: rendered.length,
        text: rendered.map(r => r.innerText).join('\\n'),
        pending: codes.filter(c => c.startsWith('glued(')),
        errors: document.querySelectorAll(sel.errors).length,
        unknown: [...document.querySelectorAll(sel.unknown)].map(s => s.innerText)
          .filter(t => t.includes('Unknown')),
        unresolved: [...document.querySelectorAll(sel.unresolved)].map(s => s.innerText),
        captions: [...document.querySelectorAll(sel.figures)].map(f => f.innerText),
        theorems: document.querySelectorAll(sel.theorems).length,
        admonitions: document.querySelectorAll(sel.admonitions).length,
      };
    }""",
        SELECTORS,
    )


def test_a_chapter_reads_runs_and_saves_in_jupyterlab(lab, browser):
    folder, base, token = lab
    chapter = folder / f"{CHAPTER}.md"
    original, written = chapter.read_bytes(), chapter.stat().st_mtime_ns
    expected = _expected_texts(ROOT / "book" / f"{CHAPTER}.md")
    assert len(expected) >= 5
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.goto(f"{base}/lab/tree/{chapter.name}?token={token}")
        page.wait_for_selector(".jp-MarkdownCell .myst", timeout=120_000)
        page.wait_for_function(
            "() => [...document.querySelectorAll('.jp-MarkdownCell')].every(c => c.querySelector('.myst'))",
            timeout=60_000,
        )
        page.wait_for_timeout(2000)
        opened = _markdown_state(page)
        page.screenshot(path=str(SCREENSHOTS / "jupyterlab-opened.png"))
        # rendered MyST: no source text, no math error, theorem and admonition boxes
        assert opened["rendered"] == opened["cells"] > 5
        assert [raw for raw in RAW_MYST if raw in opened["text"]] == []
        assert opened["errors"] == 0, "a math or evaluation error is shown"
        assert opened["theorems"] > 0 and opened["admonitions"] > 0, opened
        # no directive JupyterLab does not know, no reference or citation it cannot
        # resolve (other chapters and papers are Markdown links: lora_book.portable)
        assert opened["unknown"] == [] and opened["unresolved"] == [], opened
        # each glued figure's caption, numbered, under the code cell that draws it
        source = chapter.read_text()
        assert len(opened["captions"]) == source.count(":::{figure}") >= 2
        captions = [c.replace("\xa0", " ") for c in opened["captions"]]
        assert all(c.startswith(f"Figure {i}:") for i, c in enumerate(captions, 1)), captions
        # citations read as author and year
        assert "Geshkovski et al. (2024)" in opened["text"]
        # before the code has run, each computed number shows its expression
        assert set(opened["pending"]) == set(expected)

        page.click("li.lm-MenuBar-item:has-text('Run')")
        page.click("li.lm-Menu-item:has-text('Run All Cells')")
        page.wait_for_function(
            """() => {
              const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
              return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.innerText));
            }""",
            timeout=300_000,
            polling=1000,
        )
        page.wait_for_function(
            """() => ![...document.querySelectorAll('.jp-MarkdownCell .myst code')]
                      .some(c => c.innerText.startsWith('glued('))""",
            timeout=60_000,
        )
        ran = _markdown_state(page)
        page.screenshot(path=str(SCREENSHOTS / "jupyterlab-ran.png"), full_page=False)
        assert ran["errors"] == 0 and ran["pending"] == []
        # every computed number of the prose, as the site shows it
        missing = {e: text for e, text in expected.items() if text not in ran["text"]}
        assert missing == {}

        page.keyboard.press("Control+s")
        for _ in range(60):  # the save really happened: jupytext wrote the file
            if chapter.stat().st_mtime_ns != written:
                break
            page.wait_for_timeout(500)

        # a link to another chapter's equation opens that chapter, as a notebook
        page.click(".jp-MarkdownCell .myst a:has-text('attention kernel')")
        page.wait_for_function(
            """() => [...document.querySelectorAll('.lm-DockPanel-tabBar .lm-TabBar-tabLabel')]
                      .some(t => t.innerText === 'ch01_particles.md')""",
            timeout=60_000,
        )
        page.wait_for_selector(".jp-MarkdownCell .myst h1:has-text('Transformers as interacting')", timeout=60_000)
        page.screenshot(path=str(SCREENSHOTS / "jupyterlab-linked-chapter.png"))
    finally:
        page.close()
    # saved after a run: outputs and evaluated expressions are not written into the chapter
    assert chapter.stat().st_mtime_ns != written, "JupyterLab did not save the chapter"
    assert chapter.read_bytes() == original, "saving the chapter in JupyterLab rewrote it"
