"""The printable book: every page of the built site printed by headless Chromium and
bound into one PDF, with a cover, a table of contents, bookmarks and page numbers.

    python -m lora_book.pdf [SITE]      # default SITE: _build/html

writes two printouts (:data:`PRINTOUTS`) into SITE, both linked from every page's
download menu:

- ``lora-clusters-book.pdf`` (:data:`PDF_NAME`), the whole book, which the preface links;
- ``lora-clusters-exercises.pdf`` (:data:`EXERCISES_PDF`), the exercise sheets: the
  "Exercises" section of every chapter and nothing else, one chapter after the other.
  Printed from the full site they carry the solutions (the teacher's key); from the
  student site (``make student-book``) they have none (the hand-out).
The route works offline: the site already carries its outputs (from the execution
cache), its fonts and MathJax, so printing it needs only Debian's Chromium (driven
by playwright, ``CHROMIUM`` names it) and pypdf to bind the pages.  What is printed is
what the site shows, in the print style of ``book.css``: no navigation, hidden code
stays hidden, interactive panels and animations show their first state, and links to
other pages become plain text (they have no target on paper).

Each page is laid out at the printed width first and measured: a displayed equation,
code line or table wider than the paper would be cut off on the page, and
:func:`build_pdf` reports every one (``PrintedBook.overflows``); the tests require none.
"""

from __future__ import annotations

import argparse
import html
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .repository import BUILT_SITE, ROOT

PDF_NAME = "lora-clusters-book.pdf"
EXERCISES_PDF = "lora-clusters-exercises.pdf"
CHROMIUM = "/usr/bin/chromium"

# A4 with 14 mm margins, printed at 85%: the text column is 182 mm, that is
# 182 / 25.4 * 96 / 0.85 = 809 CSS pixels, about the site's own column at 1280 px
PAPER = {"format": "A4", "margin_mm": 14, "scale": 0.85}
MM_PER_INCH, CSS_PX_PER_INCH = 25.4, 96


def printed_width_px() -> int:
    """The width, in CSS pixels, of the text column on paper."""
    column_mm = 210 - 2 * PAPER["margin_mm"]
    return int(column_mm / MM_PER_INCH * CSS_PX_PER_INCH / PAPER["scale"])


@dataclass
class PrintedPage:
    """One page of the site in the PDF: its file, title, first page (1-based, in the
    numbering printed at the foot of the pages) and number of pages."""

    path: str
    title: str
    first_page: int = 0
    pages: int = 0


@dataclass
class PrintedBook:
    """What :func:`build_pdf` made: the PDF, its front matter length (cover and
    contents, unnumbered), the printed pages, and everything that was too wide for the
    paper (``(page, what, width in px)``; the column is :func:`printed_width_px`)."""

    pdf: Path
    front_pages: int
    pages: list = field(default_factory=list)
    overflows: list = field(default_factory=list)


@dataclass(frozen=True)
class Printout:
    """What to print from each page: the whole page (``only=None``) or one part of it
    (a CSS selector; pages without it are left out), under which file name and cover."""

    name: str
    only: str | None
    subtitle: str
    note: str


def site_pages(site: Path, toc: Path | None = None) -> list[str]:
    """The HTML files of the book in reading order, from ``_toc.yml``."""
    import yaml

    toc = toc or ROOT / "_toc.yml"
    entries = yaml.safe_load(toc.read_text(encoding="utf-8"))
    files = [entries["root"]] + [c["file"] for c in entries.get("chapters", [])]
    pages = [f + ".html" for f in files]
    missing = [p for p in pages if not (site / p).is_file()]
    if missing:
        raise FileNotFoundError(f"the site at {site} lacks {', '.join(missing)}: build it first (make book)")
    return pages


# run in every page before printing: wait for MathJax, make links to other pages plain
# text (on paper they lead nowhere), shrink wide printed tables, and measure what is
# still wider than the column
_PREPARE = """
async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  await Promise.all([...document.images].map(img => img.complete ? null :
    new Promise(done => { img.onload = img.onerror = done; })));
  for (const a of document.querySelectorAll('article a[href]')) {
    const href = a.getAttribute('href');
    if (!href.startsWith('#') && !/^(https?:|mailto:)/.test(href)) {
      a.removeAttribute('href');
    }
  }
  const article = document.querySelector('article') || document.body;
  const column = article.getBoundingClientRect().width;
  // a printed table keeps its columns: shrink its font until it fits; an output that
  // would need less than 60% is running text, not a table, and wraps instead
  for (const pre of article.querySelectorAll('.cell_output pre')) {
    if (pre.scrollWidth > pre.clientWidth + 1) {
      const factor = 0.98 * pre.clientWidth / pre.scrollWidth;
      if (factor >= 0.6) {
        pre.style.fontSize = (parseFloat(getComputedStyle(pre).fontSize) * factor) + 'px';
      } else {
        pre.style.setProperty('white-space', 'pre-wrap', 'important');
        pre.style.overflowWrap = 'anywhere';
      }
    }
  }
  const wide = [];
  const selectors = 'mjx-container[display="true"], pre, table, img, .cell_output';
  for (const el of article.querySelectorAll(selectors)) {
    if (el.closest('.toggle-hidden, details:not([open]), [hidden]')) continue;
    // wider than the column, or than its own box (which the paper cannot scroll)
    const width = Math.max(el.scrollWidth, el.getBoundingClientRect().width);
    if (width > column + 1 || el.scrollWidth > el.clientWidth + 1) {
      const name = el.tagName.toLowerCase();
      const text = (el.textContent || el.getAttribute('src') || '').trim().slice(0, 60);
      wide.push([name, text, Math.round(width)]);
    }
  }
  return {column: Math.round(column), wide: wide};
}
"""

# run before _PREPARE when a printout keeps one part of each page: the chapter's title
# and that part stay, the rest of the article goes; returns how many solutions it kept
# (null when the page has no such part)
_KEEP_ONLY = """
(selector) => {
  const part = document.querySelector(selector);
  if (!part) return null;
  const top = document.querySelector('article section') || document.querySelector('article');
  for (const child of [...top.children]) {
    if (child.tagName === 'H1' || child === part || child.contains(part)) continue;
    child.remove();
  }
  // the theme's printed list of the page's sections: on a sheet, only one is left
  for (const toc of document.querySelectorAll('#jb-print-toc')) toc.remove();
  return part.querySelectorAll('.solution').length;
}
"""

_FOOT = (
    '<div style="font-size:8px;width:100%;margin:0 14mm;color:#444;display:flex;'
    'justify-content:space-between;font-family:sans-serif">'
    "<span>{title}</span></div>"
)


def _chromium(executable: str | None):
    from playwright.sync_api import sync_playwright

    path = executable or os.environ.get("CHROMIUM", CHROMIUM)
    if not Path(path).is_file():
        raise FileNotFoundError(f"no Chromium at {path}: run `make browser` or set CHROMIUM")
    manager = sync_playwright().start()
    return manager, manager.chromium.launch(executable_path=path, args=["--no-sandbox"])


def _print(page, target: Path, footer: str) -> None:
    margin = f"{PAPER['margin_mm']}mm"
    page.pdf(
        path=str(target),
        format=PAPER["format"],
        scale=PAPER["scale"],
        margin={"top": margin, "bottom": margin, "left": margin, "right": margin},
        print_background=True,
        display_header_footer=bool(footer),
        header_template="<span></span>",
        footer_template=footer or "<span></span>",
    )


def _front_matter(book_title: str, pages: list[PrintedPage], note: str, subtitle: str) -> str:
    rows = "".join(f"<tr><td>{html.escape(p.title)}</td><td class='n'>{p.first_page}</td></tr>" for p in pages)
    return f"""<!doctype html><html><head><meta charset="utf-8"><style>
    body {{ font-family: sans-serif; color: #111; }}
    .cover {{ height: 250mm; display: flex; flex-direction: column; justify-content: center;
              break-after: page; }}
    h1 {{ font-size: 30px; line-height: 1.25; margin: 0 0 12px; }}
    .sub {{ font-size: 16px; color: #333; }}
    .note {{ margin-top: 40px; font-size: 12px; color: #333; max-width: 150mm; line-height: 1.5; }}
    table {{ width: 100%; border-collapse: collapse; font-size: 14px; }}
    td {{ padding: 5px 0; border-bottom: 1px dotted #999; }}
    td.n {{ text-align: right; width: 20mm; }}
    </style></head><body>
    <div class="cover"><h1>{html.escape(book_title)}</h1>
    <div class="sub">{subtitle}An executable book of <i>The Impact of LoRA on the Emergence of
    Clusters in Transformers</i> (Koubbi, Boussard and Hernandez, 2024)</div>
    <div class="note">{note}</div></div>
    <h2>Contents</h2><table>{rows}</table></body></html>"""


def _page_numbers(n: int, first: int) -> str:
    pages = "".join(f'<div class="p"><span>{k}</span></div>' for k in range(first, first + n))
    margin = PAPER["margin_mm"]
    return f"""<!doctype html><html><head><style>
    @page {{ size: A4; margin: 0; }}
    body {{ margin: 0; }}
    .p {{ height: 297mm; position: relative; break-after: page; }}
    .p span {{ position: absolute; bottom: {margin / 2 - 1.5}mm; right: {margin}mm;
               font: 9px sans-serif; color: #444; }}
    </style></head><body>{pages}</body></html>"""


COVER_NOTE = (
    "Printed from the website, whose numbers and figures are computed by the chapters "
    "themselves (see the Reproducibility chapter for the machine, scale and wall time of "
    "every run). On paper, hidden code stays hidden, interactive panels and animations "
    "show their first state, and links to other chapters are plain text. Every chapter "
    "also runs as a notebook: download it from the site."
)
EXERCISES_NOTE = (
    "The exercises of every chapter, in the order of the book, {solutions}. Each sheet is "
    "the Exercises section of its chapter: the equations, figures and code it mentions "
    "are those of the chapter (in the whole book, or on the site)."
)
WITH_SOLUTIONS = (
    "each followed by its solution (the teacher's key; the student version of the site prints them without)"
)
WITHOUT_SOLUTIONS = "without solutions (printed from the student version of the site)"
BOOK = Printout(PDF_NAME, None, "", COVER_NOTE)
EXERCISES = Printout(EXERCISES_PDF, "section#exercises", "<b>Exercises.</b> ", EXERCISES_NOTE)
#: what ``python -m lora_book.pdf`` (``make book``) prints
PRINTOUTS = (BOOK, EXERCISES)
DEFAULT_TITLE = "LoRA and the emergence of clusters in Transformers: an executable book"


def _print_site_pages(page, url: str, files: list[str], scratch: Path, progress: bool, only: str | None = None):
    """Print each page of the site (or, with ``only``, that part of each page that has
    it) to its own PDF; return the printed pages, their files, what was too wide for the
    paper, and the number of solutions printed."""
    from pypdf import PdfReader

    from lora_clusters.progress import progress_bar

    printed, parts, overflows, solutions = [], [], [], 0
    bar = progress_bar(len(files), "printing pages", unit="page", enabled=progress)
    for k, name in enumerate(files):
        page.goto(url + name, wait_until="load")
        if only is not None:
            kept = page.evaluate(_KEEP_ONLY, only)
            if kept is None:
                if bar is not None:
                    bar.update(1)
                continue
            solutions += kept
        measured = page.evaluate(_PREPARE)
        overflows += [(name, what, width) for what, _, width in measured["wide"]]
        title = page.evaluate("() => (document.querySelector('article h1') || {}).textContent || document.title")
        title = title.replace("#", "").strip()
        target = scratch / f"{k:02d}.pdf"
        _print(page, target, _FOOT.format(title=html.escape(title)))
        parts.append(target)
        printed.append(PrintedPage(name, title, pages=len(PdfReader(target).pages)))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    number = 1
    for p in printed:
        p.first_page, number = number, number + p.pages
    return printed, parts, overflows, solutions


def _bind(output: Path, title: str, front: Path, numbers: Path, pages: list, parts: list) -> int:
    """Front matter, then every printed page with its bookmark and its page number
    stamped on; returns the number of front pages."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    writer.append(str(front))
    front_pages = len(writer.pages)
    stamps = PdfReader(numbers).pages
    total = sum(p.pages for p in pages)
    if len(stamps) != total:
        raise RuntimeError(f"{len(stamps)} page numbers printed for {total} pages")
    for p, part in zip(pages, parts):
        first = len(writer.pages)
        writer.append(str(part))
        writer.add_outline_item(title=p.title, page_number=first)
    for k in range(total):
        writer.pages[front_pages + k].merge_page(stamps[k])
    writer.add_metadata({"/Title": title, "/Creator": "lora_book.pdf (Chromium, pypdf)"})
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("wb") as handle:
        writer.write(handle)
    return front_pages


def build_pdf(
    site: Path | str = BUILT_SITE,
    *,
    output: Path | str | None = None,
    chromium: str | None = None,
    toc: Path | None = None,
    progress: bool = True,
    printout: Printout = BOOK,
) -> PrintedBook:
    """Print every page of the built ``site`` (or the part ``printout.only`` of each)
    and bind them into ``output`` (default ``site/<printout.name>``); returns a
    :class:`PrintedBook`."""
    from .site_server import StaticServer

    site = Path(site).resolve()
    book = PrintedBook(Path(output) if output else site / printout.name, 0)
    files = site_pages(site, toc)
    manager, browser = _chromium(chromium)
    try:
        with StaticServer(site) as server, tempfile.TemporaryDirectory() as scratch:
            scratch = Path(scratch)
            # laid out at the paper's width, so that what is measured is what is printed
            context = browser.new_context(viewport={"width": printed_width_px(), "height": 1200})
            page = context.new_page()
            page.emulate_media(media="print")
            book.pages, parts, book.overflows, solutions = _print_site_pages(
                page, server.url, files, scratch, progress, printout.only
            )
            if not book.pages:
                raise ValueError(f"no page of {site} has {printout.only!r}: nothing to print for {printout.name}")
            title = page.evaluate("() => document.querySelector('meta[property=\"og:site_name\"]')?.content || ''")
            title = title or DEFAULT_TITLE
            front, numbers = scratch / "front.pdf", scratch / "numbers.pdf"
            note = printout.note.format(solutions=WITH_SOLUTIONS if solutions else WITHOUT_SOLUTIONS)
            page.set_content(_front_matter(title, book.pages, note, printout.subtitle))
            _print(page, front, "")
            page.set_content(_page_numbers(sum(p.pages for p in book.pages), 1))
            page.pdf(path=str(numbers), format=PAPER["format"], prefer_css_page_size=True)
            context.close()
            book.front_pages = _bind(book.pdf, title, front, numbers, book.pages, parts)
    finally:
        browser.close()
        manager.stop()
    return book


def build_printouts(
    site: Path | str = BUILT_SITE,
    *,
    chromium: str | None = None,
    toc: Path | None = None,
    progress: bool = True,
) -> dict[str, PrintedBook]:
    """Every printout of :data:`PRINTOUTS` (what ``make book`` prints), by file name."""
    return {
        printout.name: build_pdf(site, chromium=chromium, toc=toc, progress=progress, printout=printout)
        for printout in PRINTOUTS
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", nargs="?", default=str(BUILT_SITE))
    args = parser.parse_args(argv)
    failed = False
    for book in build_printouts(args.site).values():
        pages = book.front_pages + sum(p.pages for p in book.pages)
        print(f"{book.pdf}: {pages} pages, printed from {len(book.pages)} pages of the site")
        for name, what, width in book.overflows:
            print(f"  too wide for the paper ({printed_width_px()} px): {name}: {what}, {width} px")
        failed = failed or bool(book.overflows)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
