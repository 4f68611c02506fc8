"""The chapters' lecture slides (lora_book.slides), on a small site made here: two chapter
pages written as the book's build writes them (sphinx-proof statements, myst-nb figures,
glued numbers, an admonition, a panel, exercises with solutions), with the site's real
vendored reveal.js and MathJax and the book's own slide style and script.

What is read from a page is checked without a browser; the decks are then opened from
disk (file://) in Chromium at 1280x720: every slide renders and fits, the arrow key
moves from slide to slide, and nothing fails or is fetched from elsewhere.  The decks of
the real chapters are checked on the full build by tests/test_site.py.
"""

from __future__ import annotations

import re

import pytest

from lora_book import OWN_STATIC, slides
from site_tools import broken_internal_links, external_urls_in, walk_deck, watch_errors

HEAD = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>{title}</title>
<script>window.MathJax = {{"tex": {{"macros": {{"R": "\\\\mathbb{{R}}", "Vt": "\\\\tilde V",
"op": "\\\\mathrm{{op}}"}}}},
"options": {{"processHtmlClass": "tex2jax_process|mathjax_process|math|output_area"}}}}</script>
<script defer="defer" src="../_static/vendor/mathjax/tex-mml-chtml.js?v=cadf963e"></script>
</head><body><main><article class="bd-article">
"""
FOOT = "</article></main></body></html>\n"


def _math(tex: str) -> str:
    return f'<span class="math notranslate nohighlight">\\({tex}\\)</span>'


def _display(label: str, number: int, tex: str) -> str:
    return (
        f'<div class="math notranslate nohighlight" id="equation-{label}">\n'
        f'<span class="eqno">({number})<a class="headerlink" href="#equation-{label}">#</a></span>'
        f"\\[{tex}\\]</div>"
    )


def _glued(value: str) -> str:
    return f'<span class="pasted-text">{value}</span>'


def _figure(label: str, image: str, number: int, caption: str) -> str:
    return (
        f'<figure class="wide-figure align-default" id="{label}">\n'
        f'<a class="reference internal image-reference" href="../_images/{image}">'
        f'<img alt="../_images/{image}" src="../_images/{image}" style="width: 100%;" /></a>\n'
        f'<figcaption><p><span class="caption-number">Fig. {number} </span><span class="caption-text">{caption}'
        f'</span><a class="headerlink" href="#{label}" title="Link to this image">#</a></p></figcaption></figure>'
    )


LONG_SUM = " + ".join(f"a_{{{k}}} x^{{{k}}}" for k in range(1, 17))
MU, NU, T, MU0, BALL, TPOS, A = (_math(m) for m in (r"\mu_t", r"\nu_t", "t", r"\mu_0", "B(0,R)", r"t\ge 0", "A"))
CLAUSE = (
    "<p>Clause {k}: for every radius "
    + _math("r")
    + " the kernel of "
    + _math(r"(Q,K,\Vt)")
    + " is bounded by "
    + _math(r"\|V\|_{op} r")
    + " and Lipschitz with a constant that grows like "
    + _math("e^{2r^2}")
    + ".</p>"
)
BOUND = _display("eq-bound", 1, r"W_2(\mu_t,\nu_t)^2 \le 2\,C_1(R_t)^2\, e^{2C_t e^{3K_t}}.")
TALL = r"\begin{aligned} R_t &= R e^{t} \\ K_t &= 2\|A\|R_t^2 \\ C_t &= \int_0^t C_2(R_s)^2 ds\end{aligned}"
WIDE_CAPTION = (
    "Measured " + _math("W_2") + " against the bound <a class='reference internal' href='#equation-eq-bound'>(1)</a>,"
    " for sizes " + _math("10^{-4}") + " to " + _math("10^{-1}") + "."
)

CHAPTER_ONE = (
    HEAD.format(title="Stability under a fixture")
    + f"""
<section class="tex2jax_ignore mathjax_ignore" id="stability-under-a-fixture">
<span id="ch-fixture"></span>
<h1>Stability under a fixture<a class="headerlink" href="#stability-under-a-fixture">#</a></h1>
<p class="lora-slides-link"><a href="../slides/ch01_fixture.html">Lecture slides of this chapter</a></p>
<p>How far apart can two flows {MU} and {NU} drift after a depth {T}? This
chapter answers with a bound, see <a class="reference internal" href="ch02_other.html">the other chapter</a>.</p>
<div class="cell tag_hide-input docutils container"><div class="cell_input docutils container">
<pre>import numpy as np</pre></div>
<div class="cell_output docutils container"><p>An output that quotes {_glued("99")} and is no prose.</p></div></div>
<div class="important admonition">
<p class="admonition-title">Which run produced the numbers on this page</p>
<p>The <strong>{_glued("cpu")}</strong> scale, {_glued("12")} seeds.</p>
</div>
<section id="the-statement">
<h2>The statement<a class="headerlink" href="#the-statement">#</a></h2>
<div class="proof proposition admonition" id="prop-fixture">
<p class="admonition-title"><span class="caption-number">Proposition 1 </span> (Stability (Prop. 4.1 of the paper))</p>
<section class="proposition-content" id="proof-content">
<p>Let {MU0} be supported in {BALL}. Then for all {TPOS}</p>
{BOUND}
</section></div>
<div class="proof corollary admonition" id="cor-long">
<p class="admonition-title"><span class="caption-number">Corollary 2 </span> (A long statement)</p>
<section class="corollary-content" id="proof-content">
{"".join(CLAUSE.replace("{k}", str(k)) for k in range(1, 7))}
{_display("eq-wide", 2, LONG_SUM)}
{_display("eq-tall", 3, TALL)}
</section></div>
<div class="proof proof admonition" id="proof">
<p class="admonition-title">Proof. </p><section class="proof-content"><p>A proof is no statement.</p></section></div>
</section>
<section id="the-bound-against-the-measure">
<h2>The bound against the measure<a class="headerlink" href="#the-bound-against-the-measure">#</a></h2>
{_figure("fig-wide", "wide.png", 1, WIDE_CAPTION)}
<p>The bound holds at every one of the {_glued("732")} sampled times. How much room does it leave? As
Fig. 1 shows, the bound is loose by a factor between {_glued("72")} and {_glued("79")} (see e.g. the
table). No number in this sentence.</p>
<ul class="simple">
<li><p>For {A} the bound is far looser, from {_glued("7.18e+03")} to {_glued("2.27e+05")}.</p></li>
<li><p>A list item without any number.</p></li>
</ul>
<table class="table"><tbody><tr><td><p>A table cell with {_glued("5")}.</p></td></tr></tbody></table>
{_figure("fig-tall", "tall.png", 2, "A tall picture with a long caption. " * 12)}
<p>Past {_math("t=")} {_glued("1.00")} the double exponential wins.</p>
</section>
<section id="explore-the-bound">
<h2>Explore the bound<a class="headerlink" href="#explore-the-bound">#</a></h2>
<p>The panel redraws both flows for the chosen update size, {_glued("4")} values of it.</p>
<div class="cell docutils container"><div class="cell_output docutils container">
<div class="lcsp" id="lcsp-1"><div class="lcsp-controls"></div><div class="lcsp-summary">summary</div>
<img class="lcsp-image" src="../_images/panel.png" width="600" height="300" alt="the panel"></div></div></div>
</section>
<section id="exercises">
<h2>Exercises<a class="headerlink" href="#exercises">#</a></h2>
<div class="exercise admonition" id="ex-one">
<p class="admonition-title"><span class="caption-number">Exercise 1 </span></p>
<section id="exercise-content"><p>Show it, with {_glued("31337")} tokens.</p>
<div class="proof lemma admonition" id="lemma-in-exercise"><p class="admonition-title">Lemma 3</p></div></section></div>
<div class="solution dropdown admonition" id="book/ch01_fixture-solution-1"><p class="admonition-title">Solution</p>
<section><p>The solution has {_glued("424242")}.</p>
{_figure("fig-solution", "wide.png", 3, "A figure of a solution.")}</section></div>
<div class="exercise admonition" id="ex-two">
<p class="admonition-title"><span class="caption-number">Exercise 2 </span></p>
<section id="exercise-content"><p>Compute it.</p></section></div>
</section>
</section>
"""
    + FOOT
)

V = _math("V")
# wider than the slide at the deck's font: its slide is set smaller until it fits
WIDEST = _display("eq-widest", 3, " + ".join(f"b_{{{k}}} y^{{{k}}}" for k in range(1, 21)))
LAYERS = "".join(_display(f"eq-m{k}", k + 4, f"h^{{({k}+1)}} = h^{{({k})}} + W_O W_V h^{{({k})}}") for k in range(4))
UNNUMBERED = r'<div class="math notranslate nohighlight">\[ \text{an unnumbered equation} \]</div>'
CHAPTER_TWO = (
    HEAD.format(title="A chapter without statements")
    + f"""
<section id="a-chapter-without-statements">
<h1>A chapter without statements<a class="headerlink" href="#a-chapter-without-statements">#</a></h1>
<p>What does a trained network do with {V}? See
<a class="reference internal" href="ch01_fixture.html#prop-fixture">Proposition 1</a>.</p>
<section id="explore-in-jupyterlab">
<h2>Explore in JupyterLab<a class="headerlink" href="#explore-in-jupyterlab">#</a></h2>
<div class="note admonition"><p class="admonition-title">This panel needs a live kernel</p>
<p>Run <code>make lab</code> to move its sliders.</p></div>
</section>
<section id="the-model">
<h2>The model<a class="headerlink" href="#the-model">#</a></h2>
{WIDEST}
{LAYERS}
{UNNUMBERED}
</section>
</section>
"""
    + FOOT
)

PREFACE = HEAD.format(title="Preface") + '<section id="preface"><h1>Preface</h1><p>Read on.</p></section>' + FOOT


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A built site of a preface and two chapters, with the vendored scripts the decks
    load (linked from the set-up's copy) and the book's own static files."""
    from PIL import Image

    from lora_book.assets import ensure_assets

    root = tmp_path_factory.mktemp("site")
    (root / "_toc.yml").write_text(
        "format: jb-book\nroot: book/preface\nchapters:\n  - file: book/ch01_fixture\n  - file: book/ch02_other\n"
    )
    html = root / "html"
    (html / "book").mkdir(parents=True)
    (html / "book" / "preface.html").write_text(PREFACE)
    (html / "book" / "ch01_fixture.html").write_text(CHAPTER_ONE)
    (html / "book" / "ch02_other.html").write_text(CHAPTER_TWO)
    (html / "_images").mkdir()
    Image.new("RGB", (1800, 560), (40, 90, 160)).save(html / "_images" / "wide.png")
    Image.new("RGB", (500, 1400), (160, 90, 40)).save(html / "_images" / "tall.png")
    Image.new("RGB", (600, 300), (90, 160, 40)).save(html / "_images" / "panel.png")
    (html / "_sources" / "book").mkdir(parents=True)
    (html / "_sources" / "book" / "ch01_fixture.ipynb").write_text("{}")
    (html / "_static").mkdir()
    (html / "_static" / "vendor").symlink_to(ensure_assets(verbose=False) / "vendor", target_is_directory=True)
    (html / "_static" / "lora-clusters").symlink_to(OWN_STATIC / "lora-clusters", target_is_directory=True)
    return html, root / "_toc.yml"


@pytest.fixture(scope="module")
def decks(site):
    html, toc = site
    return {deck.page: deck for deck in slides.write_decks(html, toc=toc)}


def _plain(fragment: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", "", fragment).split())


def test_a_deck_is_cut_out_of_its_page(site):
    html, _ = site
    deck = slides.extract_deck(html, "book/ch01_fixture.html")
    assert (deck.title, deck.chapter, deck.path) == ("Stability under a fixture", 1, "slides/ch01_fixture.html")
    kinds = [s.kind for s in deck.slides]
    assert kinds == [
        "title",
        "box",
        "statement",
        "statement",
        "figure",
        "numbers",
        "figure",
        "numbers",
        "panel",
        "links",
    ]
    title, box, first, second, wide, numbers, tall, past, panel, links = deck.slides
    # the question: the chapter's first paragraph, its link to the other chapter rebased
    assert "How far apart can two flows" in title.html and "Chapter 1" in title.html
    assert "Lecture slides" not in title.html  # the page's link to this deck is no question
    assert 'href="../book/ch02_other.html"' in title.html
    # the statements (not the proof, not the lemma of an exercise), with their equations
    assert (first.anchor, second.anchor) == ("prop-fixture", "cor-long")
    assert "Proposition 1" in first.html and "\\le 2\\,C_1(R_t)^2" in first.html and first.section == "The statement"
    assert "Clause 6" in second.html and "a_{16} x^{16}" in second.html
    assert "A proof is no statement" not in "".join(s.html for s in deck.slides)
    # the figures with their captions and the page's images; links into the page go to it
    assert wide.anchor == "fig-wide" and 'src="../_images/wide.png"' in wide.html and "Fig. 1" in wide.html
    assert 'href="../book/ch01_fixture.html#equation-eq-bound"' in wide.html
    assert "image-reference" not in wide.html and "headerlink" not in wide.html and " id=" not in wide.html
    assert tall.anchor == "fig-tall" and "A tall picture" in tall.html
    # the box that says which run produced the numbers
    assert "Which run produced" in box.html and _glued("cpu") in box.html
    # the sentences that quote glued numbers, one item each, nothing else of the prose
    items = [_plain(item) for item in re.findall(r"<li>(.*?)</li>", numbers.html, re.S)]
    assert items == [
        "The bound holds at every one of the 732 sampled times.",
        "As Fig. 1 shows, the bound is loose by a factor between 72 and 79 (see e.g. the table).",
        "For \\(A\\) the bound is far looser, from 7.18e+03 to 2.27e+05.",
    ]
    assert numbers.section == "The bound against the measure"
    assert _plain(past.html) == "Past \\(t=\\) 1.00 the double exponential wins."
    # outputs, tables, exercises and solutions stay on the page
    everything = "".join(s.html for s in deck.slides)
    for absent in ("99", "31337", "424242", "A table cell", "Lemma 3", "A figure of a solution"):
        assert absent not in _plain(everything), absent
    # the panel: its section, its first picture, a link to it on the page
    assert panel.anchor == "explore-the-bound" and "../_images/panel.png" in panel.html
    assert 'href="../book/ch01_fixture.html#explore-the-bound"' in panel.html and "4 values" in _plain(panel.html)
    # the last slide: the page, the panel, the two exercises, the notebook
    assert 'href="../book/ch01_fixture.html"' in links.html
    assert 'href="../book/ch01_fixture.html#exercises">2 exercises' in links.html
    assert 'href="../_sources/book/ch01_fixture.ipynb"' in links.html
    assert deck.mathjax == "_static/vendor/mathjax/tex-mml-chtml.js" and '"Vt"' in deck.mathjax_config


def test_a_chapter_without_statements_shows_its_numbered_equations(site):
    html, _ = site
    deck = slides.extract_deck(html, "book/ch02_other.html")
    assert [s.kind for s in deck.slides] == ["title", "equations", "equations", "panel", "links"]
    shown = "".join(s.html for s in deck.slides if s.kind == "equations")
    assert shown.count('class="eqno"') == 5 and "unnumbered" not in shown
    assert [s.html.count('class="eqno"') for s in deck.slides[1:3]] == [3, 2]
    assert 'href="../book/ch01_fixture.html#prop-fixture"' in deck.slides[0].html
    # a panel that runs in JupyterLab only: the page's note about it
    assert "This panel needs a live kernel" in deck.slides[3].html and "<img" not in deck.slides[3].html
    # no notebook in the site for it, no exercises: the page and its panel
    assert deck.slides[-1].html.count("<li>") == 2


def test_sentences_are_not_cut_at_abbreviations_or_inside_math():
    from bs4 import BeautifulSoup

    paragraph = BeautifulSoup(
        "<p>By Prop. 6.1 and Thm 5.4 the value is <span class='pasted-text'>0.5</span>. It holds "
        "for <span class='math'>\\(x. Y\\)</span> too! The cf. remark ends here. <span>2</span> starts "
        "a sentence.</p>",
        "html.parser",
    ).p
    sentences = [slides._render(s) for s in slides._sentences(paragraph)]
    assert [_plain(s) for s in sentences] == [
        "By Prop. 6.1 and Thm 5.4 the value is 0.5.",
        "It holds for \\(x. Y\\) too!",
        "The cf. remark ends here.",
        "2 starts a sentence.",
    ]


def test_decks_are_written_for_the_chapters_only_and_load_from_the_site(site, decks):
    html, _ = site
    assert sorted(decks) == ["book/ch01_fixture.html", "book/ch02_other.html"]
    assert sorted(p.name for p in (html / "slides").iterdir()) == ["ch01_fixture.html", "ch02_other.html"]
    text = (html / "slides" / "ch01_fixture.html").read_text()
    assert text.count("<section data-kind=") == len(decks["book/ch01_fixture.html"].slides)
    for loaded in ("_static/vendor/reveal.js/reveal.js", "_static/vendor/mathjax/tex-mml-chtml.js", "slides.js"):
        assert loaded in text
    assert external_urls_in(html) == [] and broken_internal_links(html) == []
    assert slides.has_deck("book/ch09_lora_language_model") and not slides.has_deck("book/instructors")
    assert slides.deck_path("book/ch03_phase_transition") == "slides/ch03_phase_transition.html"


def test_a_chapter_page_links_its_deck_in_its_menu_and_under_its_title():
    from lora_book.downloads import offer_slides

    def context():
        return {
            "header_buttons": [{"label": "download-buttons", "buttons": []}],
            "pathto": lambda path, resource: "../" + path,
            "body": '<section id="x"><h1>Title<a class="headerlink" href="#x">#</a></h1><p>text</p></section>',
        }

    chapter = context()
    offer_slides(None, "book/ch02_stability", "page.html", chapter, None)
    (button,) = chapter["header_buttons"][0]["buttons"]
    assert button["url"] == "../slides/ch02_stability.html" and "slides" in button["text"]
    assert '</h1>\n<p class="lora-slides-link"><a href="../slides/ch02_stability.html"' in chapter["body"]
    other = context()
    offer_slides(None, "book/instructors", "page.html", other, None)
    assert other == context() | {"pathto": other["pathto"]}


def test_the_lecture_slides_role_links_a_chapters_deck():
    from types import SimpleNamespace

    from docutils import nodes

    messages = []
    reporter = SimpleNamespace(error=lambda text, line: messages.append(text) or nodes.system_message(text))
    env = SimpleNamespace(docname="book/instructors", found_docs={"book/ch02_stability", "book/instructors"})
    inliner = SimpleNamespace(
        document=SimpleNamespace(settings=SimpleNamespace(env=env)),
        reporter=reporter,
        problematic=lambda raw, text, message: nodes.problematic(raw, text),
    )
    (link,), _ = slides.lecture_slides_role("lecture-slides", "", "ch02_stability", 1, inliner)
    assert (link["refuri"], link.astext()) == ("../slides/ch02_stability.html", "slides")
    (link,), _ = slides.lecture_slides_role("lecture-slides", "", "Chapter 2 <ch02_stability>", 1, inliner)
    assert link.astext() == "Chapter 2"
    slides.lecture_slides_role("lecture-slides", "", "ch07_nowhere", 1, inliner)
    assert messages and "ch07_nowhere" in messages[0]


@pytest.mark.parametrize("page", ["book/ch01_fixture.html", "book/ch02_other.html"])
def test_every_slide_renders_and_fits_from_a_file(site, decks, browser, page):
    html, _ = site
    deck = decks[page]
    tab = browser.new_page(viewport={"width": 1280, "height": 720})
    problems, requests = watch_errors(tab), []
    tab.on("requestfailed", lambda req: problems.append(f"failed request: {req.url}"))
    tab.on("request", lambda req: requests.append(req.url))
    try:
        tab.goto((html / deck.path).as_uri())
        found = walk_deck(tab)
        # after the last slide, the arrow key stays there
        tab.keyboard.press("ArrowRight")
        last = tab.evaluate("() => Reveal.getIndices().h")
    finally:
        tab.close()
    # reveal.js started with every slide of the file, one per slide of the deck
    assert found["total"] == found["sections"] == found["ready"] == len(deck.slides)
    # the right arrow key moves one slide at a time, from the first to the last
    assert found["first"] == 0 and found["indices"] == list(range(len(deck.slides))) and last == len(deck.slides) - 1
    # the math is typeset by the site's MathJax, the images are there
    assert found["formulas"] > 0 and found["errors"] == 0 and not found["raw_tex"]
    assert found["broken_images"] == []
    # nothing sticks out of a slide: the long statement and the tall figure were set in
    # a smaller font until they fit
    assert found["overflows"] == [], found["overflows"]
    kinds = [s.kind for s in deck.slides]
    if page == "book/ch01_fixture.html":  # too tall
        assert found["fit"][kinds.index("statement") + 1] < 1, found["fit"]
    else:  # too wide
        assert found["fit"][kinds.index("equations")] < 1, found["fit"]
    # from disk, with nothing failing and nothing fetched from anywhere else
    assert problems == [], problems
    assert all(url.startswith(("file://", "data:")) for url in requests), requests
