"""Helpers of the site tests: build the book from the committed cache into a
scratch copy, serve it on 127.0.0.1, and crawl its internal links."""

from __future__ import annotations

import html.parser
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin, urlparse

from lora_book.site_server import StaticServer  # noqa: F401  (the tests import it from here)

ROOT = Path(__file__).resolve().parents[1]
#: the Chromium the browser tests drive (`make test` installs Debian's)
CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")


def chromium(playwright):
    """A headless Chromium for the browser tests (fails, naming the fix, without one)."""
    import pytest

    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: `make test` installs Debian's chromium; set CHROMIUM to another")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])


def watch_errors(page, *, warnings: bool = False) -> list[str]:
    """The list that collects, as they happen, the page's console errors (and warnings
    when asked) and its uncaught exceptions."""
    levels = ("error", "warning") if warnings else ("error",)
    problems = []
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}") if msg.type in levels else None)
    page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
    return problems


IGNORE = shutil.ignore_patterns(".venv", "_build", ".git", "__pycache__", "*.egg-info", ".pytest_cache", "test-output")


def build_site(workdir: Path, *, student: bool = False, pdf: bool = True) -> tuple[Path, str, object]:
    """Copy the repository (with its committed execution cache) to ``workdir``, build it
    with ``-n -W``, write the chapters' lecture slides and print the book and the
    exercise sheets (as ``make book`` does);
    return the HTML folder, the build log and the :class:`lora_book.pdf.PrintedBook` of
    each printout by file name (None with ``pdf=False``)."""
    src = workdir / "src"
    shutil.copytree(ROOT, src, ignore=IGNORE)
    env = dict(os.environ)
    if student:
        env["LORA_BOOK_STUDENT"] = "1"
    from lora_book import cache
    from lora_clusters.code_hash import folder_hash

    kept = {name: folder_hash(src / name) for name in ("execution_cache", "results") if (src / name).exists()}
    cache.before_build(src)
    jb = Path(sys.executable).with_name("jupyter-book")
    # cwd matters: the cache path in _config.yml is resolved against it
    proc = subprocess.run(
        [str(jb), "build", ".", "-n", "-W", "--keep-going"],
        cwd=src,
        capture_output=True,
        text=True,
        timeout=1200,
        env=env,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    cache.after_build(src)
    # as `make book` from the committed cache: no record, no stored result rewritten
    assert {name: folder_hash(src / name) for name in kept} == kept, "the build changed execution_cache/ or results/"
    html = src / "_build" / "html"
    # every chapter as a lecture deck, as `make book` writes them last (no browser
    # needed; the pages link their decks, so the site's links resolve only with them)
    from lora_book.slides import write_decks

    if not pdf:
        write_decks(html, toc=src / "_toc.yml")
        return html, log, None
    # as `make book` does: the whole book and the exercise sheets, printed from the site
    from lora_book.pdf import build_printouts

    printed = build_printouts(html, chromium=os.environ.get("CHROMIUM"), toc=src / "_toc.yml", progress=False)
    # and every figure as an image file
    from lora_book.figures import export_figures

    export_figures(html, toc=src / "_toc.yml")
    write_decks(html, toc=src / "_toc.yml")
    return html, log, printed


class _Anchors(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.links = set(), []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name"):
            if attrs.get(key):
                self.ids.add(attrs[key])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag in ("img", "script") and attrs.get("src"):
            self.links.append(attrs["src"])
        if tag == "link" and attrs.get("href"):
            self.links.append(attrs["href"])


def parse_page(path: Path) -> _Anchors:
    parser = _Anchors()
    parser.feed(path.read_text(errors="replace"))
    return parser


def broken_internal_links(html_dir: Path) -> list[str]:
    """Every href/src of every page that points inside the site to a file that does
    not exist or to an anchor the target page does not define."""
    # the pages of the site; _static holds theme template fragments, not pages
    pages = {p: parse_page(p) for p in html_dir.rglob("*.html") if p.relative_to(html_dir).parts[0] != "_static"}
    broken = []
    for page, parsed in pages.items():
        base = page.relative_to(html_dir).as_posix()
        for link in parsed.links:
            scheme = urlparse(link).scheme
            if scheme in ("http", "https", "mailto", "data", "javascript") or link.startswith("//"):
                continue
            target, fragment = urldefrag(urljoin(base, link))
            target_path = html_dir / unquote(target.split("?", 1)[0]) if target else page
            if target_path.is_dir():
                target_path = target_path / "index.html"
            if not target_path.exists():
                broken.append(f"{base}: {link} (no file {target_path.relative_to(html_dir)})")
                continue
            if fragment and target_path.suffix == ".html":
                ids = pages[target_path].ids if target_path in pages else parse_page(target_path).ids
                if unquote(fragment) not in ids:
                    broken.append(f"{base}: {link} (no anchor #{fragment})")
    return broken


def external_urls_in(html_dir: Path) -> list[str]:
    """Scripts, styles and images a page would load from outside the site (plain
    links to other websites are fine: they are not fetched when a page loads)."""
    found = []
    for page in html_dir.rglob("*.html"):
        for tag_src in _loaded_resources(page.read_text(errors="replace")):
            if urlparse(tag_src).scheme in ("http", "https") or tag_src.startswith("//"):
                found.append(f"{page.relative_to(html_dir)}: {tag_src}")
    return found


def _loaded_resources(text: str) -> list[str]:
    class Loaded(html.parser.HTMLParser):
        def __init__(self):
            super().__init__()
            self.urls = []

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag in ("script", "img", "iframe", "video", "audio", "source") and attrs.get("src"):
                self.urls.append(attrs["src"])
            if tag == "link" and attrs.get("href") and (attrs.get("rel") or "") in ("stylesheet", "preload", "icon"):
                self.urls.append(attrs["href"])

    parser = Loaded()
    parser.feed(text)
    return parser.urls


# run in a lecture deck (lora_book.slides) once it is ready: every element of the slide on
# show that lies outside the slide's area; a formula counts as a whole, by its typeset
# math (the container of a displayed one is as wide as the column, whatever it holds),
# and MathJax's hidden copy of it for screen readers is not shown
DECK_OVERFLOW = """() => {
  const area = document.querySelector('.reveal .slides').getBoundingClientRect();
  const out = [];
  for (const el of Reveal.getCurrentSlide().querySelectorAll('*')) {
    if (el.closest('mjx-assistive-mml')) continue;
    if (el.parentElement && el.parentElement.closest('mjx-container') && el.tagName !== 'MJX-MATH') continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    if (r.left < area.left - 1 || r.right > area.right + 1 || r.top < area.top - 1 || r.bottom > area.bottom + 1) {
      const what = (el.getAttribute('src') || el.textContent || '').trim().slice(0, 50);
      out.push([el.tagName.toLowerCase(), what, Math.round(r.left - area.left), Math.round(r.top - area.top),
                Math.round(r.right - area.left), Math.round(r.bottom - area.top)]);
    }
  }
  return out;
}"""


def walk_deck(page) -> dict:
    """Go through the deck open in ``page`` (a playwright page) with the right arrow key,
    once it is ready (reveal.js initialised, MathJax done, every slide fitted); return
    its slide count (reveal's and the file's sections), the horizontal index reached
    after each key press, what lies outside the slide on each slide (``DECK_OVERFLOW``,
    with the slide's index), MathJax's formulas and errors, broken images and the
    fitting factor of each slide."""
    page.wait_for_selector("html[data-deck-ready]", state="attached", timeout=60000)
    found = page.evaluate(
        """() => ({
      total: Reveal.getTotalSlides(),
      sections: document.querySelectorAll('.reveal .slides > section').length,
      ready: Number(document.documentElement.dataset.deckReady),
      formulas: document.querySelectorAll('.reveal mjx-container').length,
      errors: document.querySelectorAll('.reveal mjx-merror').length,
      raw_tex: /\\\\\\(|\\\\\\[/.test(document.querySelector('.reveal .slides').innerText),
      broken_images: [...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src.slice(0, 80)),
      fit: [...document.querySelectorAll('.reveal .slides > section')].map(s => Number(s.dataset.fit)),
      first: Reveal.getIndices().h,
    })"""
    )
    found["indices"], found["overflows"] = [], []
    for k in range(found["total"]):
        if k:
            page.keyboard.press("ArrowRight")
        found["indices"].append(page.evaluate("() => Reveal.getIndices().h"))
        found["overflows"] += [[k, *where] for where in page.evaluate(DECK_OVERFLOW)]
    return found
