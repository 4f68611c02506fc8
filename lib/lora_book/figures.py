"""Every figure of the book as an image file, for a teacher's slides.

    python -m lora_book.figures [SITE]      # default SITE: _build/html

reads the figures of the built site (each ``<figure>`` of a page of ``_toc.yml``: its
number, image and caption, as the reader sees them) and writes
``SITE/lora-clusters-figures.zip`` (:data:`FIGURES_ZIP`), linked from every page's
download menu:

- ``<page>/fig-<number>-<label>.png``: the image the site shows (drawn at twice the
  screen resolution, so it stays sharp on a projector);
- ``index.md``: one line per figure with its number, page, file and caption (math in
  its TeX source), and where it comes from.

``make book`` runs it after the build.
"""

from __future__ import annotations

import argparse
import html.parser
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote

from .pdf import site_pages
from .repository import BUILT_SITE

FIGURES_ZIP = "lora-clusters-figures.zip"
FOLDER = "lora-clusters-figures"


@dataclass
class SiteFigure:
    """One figure of the site: its page and page title, its number as printed (``3``
    for "Fig. 3"), its label, the image file in the site and the caption text."""

    page: str
    title: str
    number: str
    label: str
    image: Path
    caption: str

    @property
    def archive_name(self) -> str:
        return f"{FOLDER}/{PurePosixPath(self.page).stem}/fig-{self.number}-{self.label}{self.image.suffix}"


class _FigureParser(html.parser.HTMLParser):
    """The ``<figure>`` elements of a page (id, first image, caption number and text) and
    the page's ``<h1>``."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.figures: list[dict] = []
        self.title = ""
        self._figure: dict | None = None
        self._depth = 0
        self._in = None  # what the text being read belongs to: "number", "caption" or "h1"

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "h1" and not self.title:
            self._in = "h1"
        if tag == "figure":
            if self._figure is None:
                self._figure = {"id": attrs.get("id", ""), "src": None, "number": "", "caption": ""}
                self._depth = 0
            self._depth += 1
        elif self._figure is not None:
            if tag == "img" and self._figure["src"] is None:
                self._figure["src"] = attrs.get("src")
            classes = (attrs.get("class") or "").split()
            if "caption-number" in classes:
                self._in = "number"
            elif "caption-text" in classes:
                self._in = "caption"

    def handle_endtag(self, tag):
        if tag == "h1" and self._in == "h1":
            self._in = None
        if tag == "figure" and self._figure is not None:
            self._depth -= 1
            if self._depth == 0:
                self.figures.append(self._figure)
                self._figure = None
                self._in = None
        elif tag == "span" and self._in == "number":
            self._in = None

    def handle_data(self, data):
        if self._in == "h1":
            self.title += data
        elif self._figure is not None and self._in == "number":
            self._figure["number"] += data
        elif self._figure is not None and self._in == "caption":
            self._figure["caption"] += data


def site_figures(site: Path | str, toc: Path | None = None) -> list[SiteFigure]:
    """The figures of the built ``site`` in reading order (pages of ``_toc.yml``)."""
    site = Path(site)
    found = []
    for page in site_pages(site, toc):
        parser = _FigureParser()
        parser.feed((site / page).read_text(encoding="utf-8"))
        title = " ".join(parser.title.replace("#", "").split())
        for figure in parser.figures:
            if not figure["src"] or figure["src"].startswith("data:"):
                continue
            image = (site / page).parent / unquote(figure["src"])
            if not image.is_file():
                raise FileNotFoundError(
                    f"{page}: figure {figure['id']!r} shows {figure['src']}, which is not in the site"
                )
            number = figure["number"].replace("Fig.", "").strip()
            found.append(
                SiteFigure(page, title, number, figure["id"], image.resolve(), " ".join(figure["caption"].split()))
            )
    return found


def _index(figures: list[SiteFigure]) -> str:
    lines = [
        "# The figures of the book",
        "",
        "Each image is the figure as the website shows it, computed by the chapter's code "
        "(see the Reproducibility page for the machine and scale of every run). When you "
        "use one, cite the paper (Koubbi, Boussard and Hernandez, 2024) and this book.",
        "",
        "| Figure | Page | File | Caption |",
        "| --- | --- | --- | --- |",
    ]
    for figure in figures:
        file = figure.archive_name.split("/", 1)[1]
        caption = figure.caption.replace("|", "\\|")
        lines.append(f"| {figure.number} | {figure.title} | `{file}` | {caption} |")
    return "\n".join(lines) + "\n"


def export_figures(site: Path | str = BUILT_SITE, toc: Path | None = None) -> Path:
    """Write ``site/lora-clusters-figures.zip`` (the images and ``index.md``); return it."""
    site = Path(site)
    figures = site_figures(site, toc)
    if not figures:
        raise ValueError(f"no figure in the site at {site}: build it first (make book)")
    names = [f.archive_name for f in figures]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"two figures would share a file name: {duplicates}")
    # two figures showing the same picture are a chapter gluing one figure twice
    by_content: dict[bytes, list[str]] = {}
    for figure in figures:
        by_content.setdefault(figure.image.read_bytes(), []).append(f"{figure.page}#{figure.label}")
    same = [labels for labels in by_content.values() if len(labels) > 1]
    if same:
        raise ValueError(f"figures with the same image (a figure glued twice?): {same}")
    target = site / FIGURES_ZIP
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{FOLDER}/index.md", _index(figures))
        for figure in figures:
            archive.write(figure.image, figure.archive_name)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", nargs="?", default=str(BUILT_SITE))
    args = parser.parse_args(argv)
    target = export_figures(args.site)
    with zipfile.ZipFile(target) as archive:
        count = sum(1 for name in archive.namelist() if not name.endswith("index.md"))
    print(f"{target}: {count} figures")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
