"""Lecture slides: a reveal.js deck for every chapter, cut out of its built page.

    python -m lora_book.slides [SITE]      # default SITE: _build/html

reads the chapter pages of the built site (the pages of ``_toc.yml`` named ``chNN_...``,
:func:`has_deck`) and writes one deck per chapter, ``SITE/slides/<chapter>.html``
(:func:`deck_path`). Each chapter page links its deck (in its download menu and under its
title, :func:`offer_slides`) and the instructors' page lists them (the
``{lecture-slides}`` role). A deck is made of the page as the reader sees it, so it shows
the same statements, figures and computed numbers as the page:

1. the chapter's title and its first paragraph (the question the chapter answers);
2. one slide per statement (a ``prf:`` theorem, proposition, corollary, lemma,
   definition or assumption box) with its equations; a chapter without statements shows
   its numbered displayed equations instead, a few per slide;
3. one slide per figure, with its number and caption (the image is the page's own file);
4. the boxes that say where the numbers come from (e.g. "Which run produced the numbers
   on this page") and every sentence of the prose that quotes a computed (glued) number,
   a few per slide, under the title of their section, in the order of the page;
5. the panel: what the page's section that holds it says first, the first picture of
   its static copy when the page has one, and a link to it;
6. a last slide linking the page, its panel, its exercises and its notebook.

Exercises and their solutions, code cells and their outputs stay on the page.

A deck loads nothing from outside the site: reveal.js and MathJax from
``_static/vendor`` (:mod:`lora_book.assets`), its style and script from
``_static/lora-clusters/slides.css`` and ``slides.js`` (after MathJax has typeset, a
slide whose content is larger than the 1280x720 slide is set in a smaller font until it
fits), the figures from the page's ``_images``; it opens from disk (file://) as from any
static host. ``make book`` runs this after the build, next to the PDFs and the figures.
"""

from __future__ import annotations

import argparse
import copy
import html
import json
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import urljoin, urlsplit

from .repository import BUILT_SITE

#: the folder of the site that holds the decks
DECK_FOLDER = "slides"
#: the class of the line under a chapter's title that links its deck (not the question)
LINK_CLASS = "lora-slides-link"
#: the pages that get a deck: the chapters (``book/ch01_particles`` ...)
CHAPTER = re.compile(r"(?:^|/)ch(\d\d)_[\w-]+$")
#: what a deck loads from the site, relative to its root
REVEAL = "_static/vendor/reveal.js"
OWN = "_static/lora-clusters"
SLIDE_SIZE = (1280, 720)

#: the ``prf:`` boxes that are statements (sphinx-proof's classes); proofs are not
STATEMENT_KINDS = {
    "theorem",
    "proposition",
    "corollary",
    "lemma",
    "definition",
    "assumption",
    "conjecture",
    "criterion",
    "axiom",
    "property",
    "observation",
}
#: what never goes on a slide: code cells and their outputs, exercises, solutions
_SKIPPED = ("cell", "exercise", "solution")
#: at most this many sentences quoting numbers, or this many characters of them, per slide
NUMBERS_PER_SLIDE, NUMBER_CHARACTERS_PER_SLIDE = 4, 650
#: at most this many displayed equations per slide (chapters without statements)
EQUATIONS_PER_SLIDE = 3
#: words whose period does not end a sentence ("Fig. 3", "Prop. 6.1", "e.g. the")
ABBREVIATIONS = {
    "fig",
    "figs",
    "eq",
    "eqs",
    "prop",
    "props",
    "thm",
    "cor",
    "sec",
    "secs",
    "app",
    "def",
    "cf",
    "e.g",
    "i.e",
    "al",
    "vs",
    "resp",
    "no",
    "approx",
    "ch",
    "ref",
    "refs",
}


def has_deck(docname: str) -> bool:
    """Whether the page ``docname`` (``book/ch02_stability``) gets a deck: the chapters."""
    return CHAPTER.search(docname) is not None


def deck_path(page: str) -> str:
    """The deck of a page, relative to the site's root: ``book/ch02_stability.html`` (or
    the docname ``book/ch02_stability``) -> ``slides/ch02_stability.html``."""
    name = PurePosixPath(page).name
    stem = name[: -len(".html")] if name.endswith(".html") else name
    return f"{DECK_FOLDER}/{stem}.html"


@dataclass
class Slide:
    """One slide: what it shows (``kind``: title, statement, equations, figure, box,
    numbers, panel, links), the title of the page's section it comes from (HTML, empty
    for the title slide), its content (HTML, links relative to the deck) and the id on
    the page of what it shows (a statement, a figure, a section), if any."""

    kind: str
    section: str
    html: str
    anchor: str = ""


@dataclass
class Deck:
    """The deck of one chapter page: the page (relative to the site), its title (plain
    text), the chapter's number, the slides, and the page's MathJax configuration (a
    script, so that the macros are the page's) and MathJax script (relative to the site)."""

    page: str
    title: str
    chapter: int
    slides: list[Slide] = field(default_factory=list)
    mathjax_config: str = ""
    mathjax: str = ""

    @property
    def path(self) -> str:
        return deck_path(self.page)

    def count(self, kind: str) -> int:
        return sum(1 for s in self.slides if s.kind == kind)


# --------------------------------------------------------------------------------------
# reading a page
# --------------------------------------------------------------------------------------
def _classes(tag) -> list[str]:
    return tag.get("class") or []


def _rebase(url: str, page: str, deck: str) -> str:
    """``url`` as written in ``page``, rewritten for a file at ``deck`` (both relative
    to the site's root): links inside the page point at the page itself."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not url:
        return url
    target = urlsplit(urljoin(page, url))
    path = posixpath.relpath(target.path, posixpath.dirname(deck) or ".")
    return path + (f"?{target.query}" if target.query else "") + (f"#{target.fragment}" if target.fragment else "")


def _portable(tag, page: str, deck: str):
    """A copy of ``tag`` fit for the deck: its links and images rebased, no ids (they
    belong to the page), no "#" links to itself, images not wrapped in links."""
    tag = copy.copy(tag)
    for link in tag.select("a.headerlink"):
        link.decompose()
    for link in tag.select("a.image-reference"):
        link.unwrap()
    for element in [tag, *tag.find_all(True)]:
        element.attrs.pop("id", None)
        for attribute in ("href", "src"):
            if element.get(attribute) is not None:
                element[attribute] = _rebase(element[attribute], page, deck)
    return tag


def _inner(tag) -> str:
    return "".join(str(child) for child in tag.contents).strip()


def _heading(section) -> str:
    """The title of a page section, as HTML (math stays TeX for MathJax)."""
    heading = section.find(re.compile(r"^h[1-6]$"))
    if heading is None:
        return ""
    heading = copy.copy(heading)
    for link in heading.select("a.headerlink"):
        link.decompose()
    return _inner(heading)


def _text(tag) -> str:
    return " ".join(tag.get_text(" ").split())


def _inside(tag, top, *classes: str, names: tuple = ()) -> bool:
    """Whether ``tag`` sits, below ``top``, in an element with one of ``classes`` or of
    one of the tag ``names``."""
    for parent in tag.parents:
        if parent is top:
            return False
        if parent.name in names or any(c in _classes(parent) for c in classes):
            return True
    return False


def _section_of(tag, top):
    """The page's second-level section (a direct child of the chapter's section) that
    holds ``tag``, or None for the chapter's introduction."""
    for parent in tag.parents:
        if parent is top:
            return None
        if parent.name == "section" and parent.parent is top:
            return parent
    return None


def _title_text(section) -> str:
    """The plain text of a section's title, without its "#" link."""
    heading = section.find(re.compile(r"^h[1-6]$"))
    return "" if heading is None else " ".join(heading.get_text(" ").replace("#", " ").split())


def _is_exercises(section) -> bool:
    return section is not None and (section.get("id") == "exercises" or _title_text(section) == "Exercises")


def _panel_section(top):
    """The section of the page that holds the chapter's panel: the one with a static
    copy of a panel (``div.lcsp``), else the one titled "Explore ..." or naming a panel."""
    for block in top.select("div.lcsp"):
        section = _section_of(block, top)
        if section is not None:
            return section
    for section in top.find_all("section", recursive=False):
        title = _title_text(section).lower()
        if title.startswith("explore") or "panel" in title:
            return section
    return None


_SENTENCE_END = re.compile(r"[.!?][\"'\u201d\u2019)\]]*\s+")


def _sentences(paragraph) -> list[list]:
    """The sentences of a paragraph, each a list of its strings and elements (math, glued
    numbers and links are never split)."""
    from bs4 import Comment, NavigableString

    sentences, current = [], []
    for node in list(paragraph.children):
        if isinstance(node, Comment):
            continue
        if not isinstance(node, NavigableString):
            current.append(node)
            continue
        text, start = str(node), 0
        for end in _SENTENCE_END.finditer(text):
            word = re.search(r"([\w.]+)$", text[: end.start()])
            following = text[end.end() : end.end() + 1]
            if word and word.group(1).lower() in ABBREVIATIONS:
                continue
            if following and not (following.isupper() or following.isdigit() or following in "(\u201c\"'["):
                continue
            current.append(text[start : end.end()].rstrip())
            sentences.append(current)
            current, start = [], end.end()
        if text[start:]:
            current.append(text[start:])
    if current:
        sentences.append(current)
    return sentences


def _render(nodes) -> str:
    from bs4 import NavigableString

    return "".join(
        html.escape(str(n), quote=False) if isinstance(n, NavigableString) else str(n) for n in nodes
    ).strip()


def _numbers(paragraph) -> list[str]:
    """The sentences of a (portable copy of a) paragraph that quote a glued number."""
    return [
        _render(sentence)
        for sentence in _sentences(paragraph)
        if any(
            getattr(n, "name", None) and ("pasted-text" in _classes(n) or n.select_one("span.pasted-text") is not None)
            for n in sentence
        )
    ]


def _book_title(soup) -> str:
    """The book's title, as the page's ``<title>`` gives it after the page's own."""
    title = soup.find("title")
    text = title.get_text() if title is not None else ""
    return text.split("\u2014", 1)[1].strip() if "\u2014" in text else ""


def extract_deck(site: Path | str, page: str) -> Deck:
    """The deck of the built page ``site/page`` (``page`` relative to the site, e.g.
    ``book/ch02_stability.html``): what each slide shows, in the order of the page."""
    from bs4 import BeautifulSoup

    site = Path(site)
    soup = BeautifulSoup((site / page).read_text(encoding="utf-8"), "html.parser")
    deck_file = deck_path(page)
    match = CHAPTER.search(page[: -len(".html")] if page.endswith(".html") else page)
    article = soup.find("article") or soup.body or soup
    top = article.find("section") or article
    h1 = top.find("h1")
    title = " ".join(_text(h1).replace("#", " ").split()) if h1 is not None else page
    deck = Deck(page, title, int(match.group(1)) if match else 0)
    for script in soup.find_all("script"):
        body = script.string or ""
        if not script.get("src") and body.lstrip().startswith("window.MathJax"):
            deck.mathjax_config = body.strip()
        elif script.get("src") and "mathjax" in script["src"].lower():
            deck.mathjax = _rebase(script["src"].split("?", 1)[0], page, "")

    def portable(tag):
        return _portable(tag, page, deck_file)

    page_link = _rebase(page, "", deck_file)
    panel = _panel_section(top)

    # the title slide: the chapter's title and its first paragraph
    intro = next(
        (p for p in top.find_all("p", recursive=False) if _text(p) and LINK_CLASS not in _classes(p)),
        None,
    )
    kicker = f"Chapter {deck.chapter}" if deck.chapter else ""
    book = _book_title(soup)
    source = f'<a href="{page_link}">The chapter on the website</a>'
    if book:
        source = f"<i>{html.escape(book)}</i>: {source}"
    deck.slides.append(
        Slide(
            "title",
            "",
            (f'<p class="deck-kicker">{html.escape(kicker)}</p>' if kicker else "")
            + f"<h1>{html.escape(title)}</h1>"
            + (f'<div class="deck-question">{str(portable(intro))}</div>' if intro is not None else "")
            + f'<p class="deck-source">{source}</p>',
        )
    )

    # everything else, in the order of the page
    statements = [
        box
        for box in top.select("div.proof")
        if STATEMENT_KINDS & set(_classes(box)) and not _inside(box, top, *_SKIPPED)
    ]
    items = []  # (kind, section, html, anchor)

    def add(kind, element, content, anchor=""):
        section = _section_of(element, top)
        items.append((kind, section, content, anchor))

    for element in top.find_all(["div", "figure", "p"]):
        section = _section_of(element, top)
        if _is_exercises(section) or (panel is not None and section is panel):
            continue
        if _inside(element, top, *_SKIPPED):
            continue
        classes = set(_classes(element))
        if any(element is box for box in statements):
            add("statement", element, str(portable(element)), element.get("id", ""))
        elif (
            element.name == "div"
            and "math" in classes
            and not statements
            and element.find("span", class_="eqno") is not None
            and not _inside(element, top, "proof", "admonition", names=("figure", "table"))
        ):
            add("equations", element, str(portable(element)), element.get("id", ""))
        elif element.name == "figure" and element.find("img") is not None and not _inside(element, top, "proof"):
            figure = portable(element)
            figure.attrs = {"class": ["deck-figure"]}
            for image in figure.find_all("img"):
                for attribute in ("width", "height", "style"):
                    image.attrs.pop(attribute, None)
            add("figure", element, str(figure), element.get("id", ""))
        elif (
            element.name == "div"
            and "admonition" in classes
            and not classes & {"proof", "dropdown", "exercise", "solution"}
            and not _inside(element, top, "admonition", names=("figure",))
        ):
            add("box", element, str(portable(element)))
        elif (
            element.name == "p"
            and element is not intro
            and element.select_one("span.pasted-text") is not None
            and not _inside(element, top, "admonition", "proof", names=("figure", "table", "figcaption"))
        ):
            for sentence in _numbers(portable(element)):
                add("numbers", element, sentence)

    # consecutive sentences with numbers, and consecutive equations, share slides
    pending: list = []

    def flush():
        if not pending:
            return
        kind, section = pending[0][0], pending[0][1]
        if kind == "numbers":
            content = '<ul class="deck-numbers">' + "".join(f"<li>{c}</li>" for _, _, c, _ in pending) + "</ul>"
        else:
            content = "".join(c for _, _, c, _ in pending)
        deck.slides.append(Slide(kind, _heading(section) if section else "", content, pending[0][3]))
        pending.clear()

    for item in items:
        kind, section = item[0], item[1]
        if kind in ("numbers", "equations"):
            same = pending and pending[0][0] == kind and pending[0][1] is section
            if kind == "numbers":
                size = sum(len(re.sub(r"<[^>]+>", "", c)) for _, _, c, _ in [*pending, item])
                full = len(pending) >= NUMBERS_PER_SLIDE or size > NUMBER_CHARACTERS_PER_SLIDE
            else:
                full = len(pending) >= EQUATIONS_PER_SLIDE
            if not same or full:
                flush()
            pending.append(item)
            continue
        flush()
        deck.slides.append(Slide(kind, _heading(section) if section else "", item[2], item[3]))
    flush()

    # the panel: its section, with the first picture of its static copy
    exercises = next((s for s in top.find_all("section", recursive=False) if _is_exercises(s)), None)
    if panel is not None:
        anchor = panel.get("id", "")
        parts = []
        # what the panel does: the section's first paragraph, else its first box (a panel
        # shown only in JupyterLab is explained in a note)
        lead = next((p for p in panel.find_all("p", recursive=False) if _text(p)), None)
        lead = lead or next((box for box in panel.find_all("div", class_="admonition", recursive=False)), None)
        if lead is not None:
            parts.append(f'<div class="deck-panel-text">{str(portable(lead))}</div>')
        picture = panel.select_one("div.lcsp img.lcsp-image, div.lcsp img")
        if picture is not None:
            image = portable(picture)
            for attribute in ("width", "height", "style"):
                image.attrs.pop(attribute, None)
            image["class"] = ["deck-panel-image"]
            image["alt"] = image.get("alt") or "the panel's first picture"
            parts.append(str(image))
        link = f"{page_link}#{anchor}" if anchor else page_link
        parts.append(f'<p class="deck-source"><a href="{link}">Open the panel on the page</a></p>')
        deck.slides.append(Slide("panel", _heading(panel), "".join(parts), anchor))

    # the last slide: where to go on
    links = [f'<li><a href="{page_link}">The chapter: {html.escape(title)}</a></li>']
    if panel is not None and panel.get("id"):
        links.append(f'<li><a href="{page_link}#{panel["id"]}">Its panel: {_heading(panel)}</a></li>')
    if exercises is not None and exercises.get("id"):
        count = len(exercises.select("div.exercise"))
        label = f"{count} exercises" if count != 1 else "1 exercise"
        links.append(f'<li><a href="{page_link}#{exercises["id"]}">{label}, for class or homework</a></li>')
    notebook = f"_sources/{page[: -len('.html')]}.ipynb"
    if (site / notebook).is_file():
        links.append(f'<li><a href="{_rebase(notebook, "", deck_file)}">The chapter as a notebook (.ipynb)</a></li>')
    from .figures import FIGURES_ZIP
    from .pdf import EXERCISES_PDF

    for name, text in ((FIGURES_ZIP, "Every figure of the book (.zip)"), (EXERCISES_PDF, "The exercise sheets (.pdf)")):
        if (site / name).is_file():
            links.append(f'<li><a href="{_rebase(name, "", deck_file)}">{text}</a></li>')
    deck.slides.append(Slide("links", "On the website", '<ul class="deck-links">' + "".join(links) + "</ul>"))
    return deck


# --------------------------------------------------------------------------------------
# writing a deck
# --------------------------------------------------------------------------------------
_TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="lora_book.slides">
<title>{title} (slides)</title>
<link rel="stylesheet" href="{root}{reveal}/reset.css">
<link rel="stylesheet" href="{root}{reveal}/reveal.css">
<link rel="stylesheet" href="{root}{reveal}/theme/white.css">
<link rel="stylesheet" href="{root}{own}/slides.css">
{mathjax}
</head>
<body>
<div class="reveal" data-page="{page}">
<div class="slides">
{slides}
</div>
<a class="deck-home" href="{page}">{home}</a>
</div>
<script src="{root}{reveal}/reveal.js"></script>
<script src="{root}{own}/slides.js"></script>
</body>
</html>
"""


def render_deck(deck: Deck) -> str:
    """The deck as an HTML file, to be written at ``site/deck.path``."""
    root = "../" * (len(PurePosixPath(deck.path).parts) - 1)
    mathjax = ""
    if deck.mathjax:
        config = deck.mathjax_config or "window.MathJax = {};"
        # the deck typesets once reveal.js has laid out every slide (lora-clusters/slides.js)
        mathjax = (
            f"<script>{config}</script>\n"
            "<script>window.MathJax.startup = Object.assign({}, window.MathJax.startup, {typeset: false});</script>\n"
            f'<script defer src="{_rebase(deck.mathjax, "", deck.path)}"></script>'
        )
    sections = []
    for slide in deck.slides:
        label = f'<p class="deck-section">{slide.section}</p>\n' if slide.section else ""
        anchor = f' data-anchor="{html.escape(slide.anchor)}"' if slide.anchor else ""
        sections.append(f'<section data-kind="{slide.kind}"{anchor}>\n{label}{slide.html}\n</section>')
    return _TEMPLATE.format(
        title=html.escape(deck.title),
        root=root,
        reveal=REVEAL,
        own=OWN,
        mathjax=mathjax,
        page=html.escape(_rebase(deck.page, "", deck.path)),
        home=html.escape(f"Chapter {deck.chapter} on the website" if deck.chapter else "On the website"),
        slides="\n".join(sections),
    )


_EXPLICIT = re.compile(r"^(?P<text>.+?)\s*<(?P<name>[^<>]+)>$", re.S)


def lecture_slides_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    """The role ``{lecture-slides}`ch02_stability``` (or ``{lecture-slides}`Chapter 2
    <ch02_stability>```): a link, from the page it is on, to that chapter's deck (which
    ``make book`` writes after the build)."""
    from docutils import nodes

    explicit = _EXPLICIT.match(text)
    label, chapter = (explicit["text"], explicit["name"].strip()) if explicit else ("slides", text.strip())
    env = inliner.document.settings.env
    if not has_deck(chapter) or not any(PurePosixPath(doc).name == chapter for doc in env.found_docs):
        message = inliner.reporter.error(f"{{lecture-slides}}: no chapter named {chapter!r}", line=lineno)
        problem = inliner.problematic(rawtext, rawtext, message)
        return [problem], [message]
    uri = posixpath.relpath(deck_path(chapter), posixpath.dirname(env.docname) or ".")
    return [nodes.reference(rawtext, label, refuri=uri, classes=["lora-deck-link"])], []


def chapter_pages(site: Path | str, toc: Path | None = None) -> list[str]:
    """The pages of the built site that get a deck, in reading order."""
    from .pdf import site_pages

    return [p for p in site_pages(Path(site), toc) if has_deck(p[: -len(".html")])]


def write_decks(site: Path | str = BUILT_SITE, toc: Path | None = None) -> list[Deck]:
    """Write the deck of every chapter of the built ``site``; return the decks."""
    site = Path(site)
    missing = [p for p in (f"{REVEAL}/reveal.js", f"{OWN}/slides.js", f"{OWN}/slides.css") if not (site / p).is_file()]
    if missing:
        raise FileNotFoundError(f"the site at {site} lacks {', '.join(missing)}: build it first (make book)")
    decks = []
    for page in chapter_pages(site, toc):
        deck = extract_deck(site, page)
        target = site / deck.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render_deck(deck), encoding="utf-8")
        decks.append(deck)
    return decks


def summary(decks: list[Deck]) -> str:
    """One line per deck: its file and how many slides of each kind."""
    lines = []
    for deck in decks:
        kinds = {}
        for slide in deck.slides:
            kinds[slide.kind] = kinds.get(slide.kind, 0) + 1
        lines.append(f"{deck.path}: {len(deck.slides)} slides {json.dumps(kinds)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", nargs="?", default=str(BUILT_SITE))
    args = parser.parse_args(argv)
    decks = write_decks(args.site)
    if not decks:
        raise SystemExit(f"no chapter page in {args.site}: nothing to make slides of")
    print(summary(decks))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
