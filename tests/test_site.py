"""The website as readers get it: built with -n -W from the committed cache,
self-contained, served on 127.0.0.1 and driven in headless Chromium.

Screenshots of every page go to ``test-output/screenshots/`` so that a failure can be
looked at.  Chromium is Debian's (``make test`` installs it when missing); playwright
drives it through ``executable_path``.
"""

from __future__ import annotations

import json
import re
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from lora_book.pdf import EXERCISES_PDF, PDF_NAME
from lora_clusters import provenance
from site_tools import (
    CHROMIUM,
    ROOT,
    StaticServer,
    broken_internal_links,
    build_site,
    external_urls_in,
    walk_deck,
    watch_errors,
)

pytestmark = pytest.mark.book
SCREENSHOTS = ROOT / "test-output" / "screenshots"


def toc_pages() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [toc["root"]] + [entry["file"] for entry in toc["chapters"]]


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    """The site (HTML folder, build log) and the PDF printed from it."""
    return build_site(tmp_path_factory.mktemp("site"))


@pytest.fixture(scope="session")
def built(site):
    html, log, _ = site
    return html, log


@pytest.fixture(scope="session")
def printed(site):
    return site[2][PDF_NAME]


@pytest.fixture(scope="session")
def sheets(site):
    return site[2][EXERCISES_PDF]


@pytest.fixture(scope="session")
def student_site(tmp_path_factory):
    return build_site(tmp_path_factory.mktemp("student"), student=True)


@pytest.fixture(scope="session")
def student(student_site):
    return student_site[0]


def test_build_uses_the_committed_cache_and_computed_numbers(built):
    html, log = built
    assert "Executing notebook" not in log, "the committed cache should hold every chapter's outputs"
    page = (html / "book" / "ch01_particles.html").read_text()
    assert "0.500000" in page  # a glued W2 of a translation by 0.5, computed in the chapter
    assert "data:image/png;base64" in page and "_anim_img" in page
    glue = json.loads((html.parent / "jupyter_execute" / "book" / "ch01_particles.glue.json").read_text())
    assert glue["long_finite"]["data"]["text/plain"] == "True"


def test_no_page_loads_anything_from_outside_the_site(built):
    html, _ = built
    assert external_urls_in(html) == []
    # the vendored copies are there, and the pages point at them
    assert (html / "_static" / "vendor" / "mathjax" / "tex-mml-chtml.js").exists()
    assert (html / "_static" / "vendor" / "html-manager" / "embed-amd.js").exists()
    assert "_static/vendor/mathjax/tex-mml-chtml.js" in (html / "book" / "ch02_stability.html").read_text()
    # MathJax's other combined bundles are left out, latest.js (which loads MathJax from
    # a CDN) among them
    mathjax = html / "_static" / "vendor" / "mathjax"
    assert not any((mathjax / name).exists() for name in ("latest.js", "tex-chtml.js", "tex-svg.js", "mml-chtml.js"))


def test_internal_links_and_cross_references_resolve(built):
    html, _ = built
    assert broken_internal_links(html) == []


def test_every_chapter_offers_its_notebook_and_source(built):
    html, _ = built
    for name in ("ch01_particles", "ch02_stability", "ch03_phase_transition", "ch04_low_rank", "ch05_orthogonal_lora"):
        page = (html / "book" / f"{name}.html").read_text()
        assert f"_sources/book/{name}.ipynb" in page and f"_sources/book/{name}.md" in page
        nb = json.loads((html / "_sources" / "book" / f"{name}.ipynb").read_text())
        assert nb["nbformat"] == 4 and any(c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code")
        assert provenance.find_record(nb)["lib_fingerprint"], "the notebook carries where it was computed"
        # its panel keeps the static copy but not the widget view, which has no state
        # in a download (JupyterLab would show "model not found" until the cell runs)
        outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
        assert not any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
        assert any('class="lcsp"' in "".join(o.get("data", {}).get("text/html", "")) for o in outputs)
    # a downloaded chapter links to the other chapters' notebooks, served next to it
    nb = json.loads((html / "_sources" / "book" / "ch02_stability.ipynb").read_text())
    prose = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    linked = set(re.findall(r"\]\((ch\d\d_\w+\.\w+)[#)]", prose))
    assert linked == {"ch01_particles.ipynb", "ch03_phase_transition.ipynb"}, linked
    assert (html / "_sources" / "book" / "ch01_particles.ipynb").exists()


def test_reproducibility_page_lists_every_chapter_with_its_device(built):
    html, _ = built
    page = (html / "book" / "reproducibility.html").read_text()
    for name in ("ch01_particles", "ch05_orthogonal_lora"):
        assert f"{name}.html" in page
    assert page.count("CPU: ") + page.count("GPU: ") >= 5  # one device per chapter
    assert "(no record" not in page
    # the chapters that train networks name the stored runs they show, with their scale
    for run in ("toy/study: ", "depth/similarities: ", "lm_lora/run-seed-0: "):
        assert run in page, run
    # myst-nb's execution table: the row of every chapter says its outputs came from the
    # cache (columns: document, modified, method, run time, status)
    exec_table = page[page.index("<table") : page.index("</table>")]
    rows = re.findall(r'<tr[^>]*>\s*<td><p><a [^>]*href="(ch\d\d_\w+)\.html"(.*?)</tr>', exec_table, re.DOTALL)
    methods = {name: re.findall(r"<td><p>([^<]*)</p></td>", cells)[1] for name, cells in rows}
    chapters = {Path(p).name for p in toc_pages() if re.match(r"ch\d\d_", Path(p).name)}
    assert set(methods) == chapters and set(methods.values()) == {"cache"}, methods


def test_student_version_has_no_solutions(built, student):
    html, _ = built
    full = (html / "book" / "ch02_stability.html").read_text()
    stripped = (student / "book" / "ch02_stability.html").read_text()
    assert 'class="solution' in full and 'class="solution' not in stripped
    # the exercises themselves stay, with their numbers
    assert stripped.count('class="exercise') == full.count('class="exercise') > 0
    # proof text of a solution (the Gronwall argument of ex-radius-growth) is gone
    assert "Gronwall" in full and "the maximum of finitely many smooth functions" not in stripped.lower()
    source = (student / "_sources" / "book" / "ch02_stability.md").read_text()
    assert "{solution" not in source and "{exercise}" in source
    nb = json.loads((student / "_sources" / "book" / "ch02_stability.ipynb").read_text())
    text = "".join("".join(c["source"]) for c in nb["cells"])
    assert "solution-start" not in text and "V_sym" not in text and "{exercise}" in text


def _pdf_text(reader, pages) -> str:
    return " ".join(" ".join((reader.pages[k].extract_text() or "").split()) for k in pages)


def _page_number_stamps(page) -> list[str]:
    """The texts printed in the bottom 30 pt of a PDF page, where the page number goes."""
    found = []

    def visit(text, cm, tm, font, size):
        y = cm[5] + tm[5] * cm[3]
        if text.strip() and y < 30:
            found.append(text.strip())

    page.extract_text(visitor_text=visit)
    return found


def test_the_whole_book_prints_as_one_pdf_with_every_chapter(built, printed):
    from pypdf import PdfReader

    html, _ = built
    pdf = html / "lora-clusters-book.pdf"
    assert printed.pdf == pdf and pdf.is_file()
    # linked from every page's download menu
    for name in ("book/preface.html", "book/ch03_phase_transition.html"):
        assert 'href="../lora-clusters-book.pdf"' in (html / name).read_text()
    reader = PdfReader(pdf)
    # every page of the site, in reading order; the page count is the front matter plus
    # what each page printed to, and a chapter takes several pages
    assert [p.path for p in printed.pages] == [f + ".html" for f in toc_pages()]
    assert len(reader.pages) == printed.front_pages + sum(p.pages for p in printed.pages)
    assert all(p.pages >= 3 for p in printed.pages if "/ch0" in p.path)
    # a bookmark per page of the site, at its first page, which carries its title
    outline = [(item.title, reader.get_destination_page_number(item)) for item in reader.outline]
    assert outline == [(p.title, printed.front_pages + p.first_page - 1) for p in printed.pages]
    for p in printed.pages:
        assert " ".join(p.title.split()) in _pdf_text(reader, [printed.front_pages + p.first_page - 1])
    # the contents page lists every title with its page number
    contents = _pdf_text(reader, range(printed.front_pages))
    for p in printed.pages:
        assert f"{' '.join(p.title.split())} {p.first_page}" in contents
    # continuous page numbers at the foot of every page after the front matter
    for k in (1, 2, len(reader.pages) // 2, len(reader.pages) - printed.front_pages):
        assert str(k) in _page_number_stamps(reader.pages[printed.front_pages + k - 1]), k
    # nothing the paper cuts off: every equation, code line and table fits the column
    assert printed.overflows == []


def _sheet_text(reader, book, printed_page) -> str:
    first = book.front_pages + printed_page.first_page - 1
    return _pdf_text(reader, range(first, first + printed_page.pages))


def test_the_exercise_sheets_hold_every_exercise_and_nothing_else(built, printed, sheets):
    from pypdf import PdfReader

    html, _ = built
    assert sheets.pdf == html / EXERCISES_PDF and sheets.overflows == []
    assert 'href="../lora-clusters-exercises.pdf"' in (html / "book" / "ch04_low_rank.html").read_text()
    reader = PdfReader(sheets.pdf)
    # one sheet per chapter, in reading order, each with its bookmark and contents line
    assert [p.path for p in sheets.pages] == [f + ".html" for f in toc_pages() if "/ch0" in f]
    outline = [(item.title, reader.get_destination_page_number(item)) for item in reader.outline]
    assert outline == [(p.title, sheets.front_pages + p.first_page - 1) for p in sheets.pages]
    front = _pdf_text(reader, range(sheets.front_pages))
    assert all(f"{' '.join(p.title.split())} {p.first_page}" in front for p in sheets.pages)
    assert "each followed by its solution" in front
    total = 0
    for p in sheets.pages:
        page = (html / p.path).read_text()
        numbers = re.findall(r'caption-number">Exercise (\d+)', page)
        sheet = _sheet_text(reader, sheets, p)
        # every exercise of the chapter, each with its solution (the teacher's key)
        assert numbers and all(f"Exercise {n}" in sheet for n in numbers), (p.path, numbers)
        assert sheet.count("Solution to") == len(numbers), p.path
        total += len(numbers)
    assert total >= 20
    # and nothing else of the chapters: no prose before the exercises, a few pages each
    text = _pdf_text(reader, range(len(reader.pages)))
    book = _pdf_text(PdfReader(printed.pdf), range(len(PdfReader(printed.pdf).pages)))
    for prose in ("continuous-depth view of residual networks", "The statement"):
        assert prose in book and prose not in text, prose
    assert len(reader.pages) < len(PdfReader(printed.pdf).pages) / 3


def test_every_figure_is_in_the_figures_archive_once(built):
    import zipfile

    from lora_book.figures import FIGURES_ZIP, FOLDER, site_figures

    html, _ = built
    assert 'href="../lora-clusters-figures.zip"' in (html / "book" / "ch03_phase_transition.html").read_text()
    figures = site_figures(html, ROOT / "_toc.yml")
    # every captioned figure of the chapters, numbered 1, 2, ... in reading order
    assert len(figures) == sum(p.read_text().count(":::{figure}") for p in (ROOT / "book").glob("ch0*.md"))
    assert [f.number for f in figures] == [str(k) for k in range(1, len(figures) + 1)]
    with zipfile.ZipFile(html / FIGURES_ZIP) as archive:
        images = [name for name in archive.namelist() if name.endswith(".png")]
        assert images == [f.archive_name for f in figures]
        contents = [archive.read(name) for name in images]
        index = archive.read(f"{FOLDER}/index.md").decode()
    # the very image the page shows, and no picture twice (ch03 once glued one figure
    # under two captions)
    assert contents == [f.image.read_bytes() for f in figures]
    assert len(set(contents)) == len(contents)
    for f in figures:
        assert f"| {f.number} | {f.title} | `{f.archive_name.split('/', 1)[1]}` | {f.caption[:40]}" in index


def test_the_figures_archive_refuses_a_picture_shown_twice(tmp_path):
    import zipfile

    from lora_book.figures import export_figures

    (tmp_path / "_toc.yml").write_text("root: a\nchapters:\n  - file: b\n")
    (tmp_path / "same.png").write_bytes(b"\x89PNG same picture")
    for name, number in (("a", 1), ("b", 2)):
        (tmp_path / f"{name}.html").write_text(
            f'<article><h1>Page {name}</h1><figure id="fig-{name}"><img src="same.png">'
            f'<figcaption><p><span class="caption-number">Fig. {number} </span>'
            f'<span class="caption-text">Caption {name}</span></p></figcaption></figure></article>'
        )
    with pytest.raises(ValueError, match="same image"):
        export_figures(tmp_path, toc=tmp_path / "_toc.yml")
    (tmp_path / "other.png").write_bytes(b"\x89PNG another picture")
    (tmp_path / "b.html").write_text((tmp_path / "b.html").read_text().replace("same.png", "other.png"))
    with zipfile.ZipFile(export_figures(tmp_path, toc=tmp_path / "_toc.yml")) as archive:
        assert sorted(n for n in archive.namelist() if n.endswith(".png")) == [
            "lora-clusters-figures/a/fig-1-fig-a.png",
            "lora-clusters-figures/b/fig-2-fig-b.png",
        ]


def test_the_pdf_has_the_figures_math_and_computed_numbers(built, printed):
    from pypdf import PdfReader

    html, _ = built
    reader = PdfReader(printed.pdf)
    for p in printed.pages:
        page_range = range(printed.front_pages + p.first_page - 1, printed.front_pages + p.first_page - 1 + p.pages)
        source = (html / p.path).read_text()
        figures = source.count("<figure")
        images = sum(len(reader.pages[k].images) for k in page_range)
        assert images >= figures, (p.path, images, figures)
        if "/ch0" in p.path:
            # MathJax typeset the math with its own fonts before the page was printed
            # (Chromium embeds them as Type 3 fonts of the MathJax_* families)
            families = set()
            for k in page_range:
                for font in (reader.pages[k].get("/Resources") or {}).get("/Font", {}).values():
                    descriptor = font.get_object().get("/FontDescriptor")
                    if descriptor is not None:
                        families.add(str(descriptor.get_object().get("/FontFamily", "")))
            assert {"MathJax_Main", "MathJax_Math"} <= families, (p.path, sorted(families))
    text = _pdf_text(reader, range(len(reader.pages)))
    # no TeX source, MyST markup or MathJax error on paper
    for raw in ("\\tilde", "\\Vt", "$$", "{eq}", "{glue", ":::", "{prf:", "](#", ".md#", "{cite"):
        assert raw not in text, raw
    # numbers computed by the chapters (ch01's glued W2 distance; ch09's held-out count)
    assert "0.500000" in text
    assert "held-out" in text and "Solution to" in text


def test_the_printer_reports_what_the_paper_would_cut_off(tmp_path):
    """A two-page site: one page fits, the other holds a table and an equation box
    wider than the paper's column, which must be reported (and the fitting one not)."""
    from pypdf import PdfReader

    from lora_book.pdf import build_pdf, printed_width_px

    (tmp_path / "_toc.yml").write_text("root: a\nchapters:\n  - file: b\n")
    (tmp_path / "a.html").write_text("<html><body><article><h1>Fits</h1><p>short</p></article></body></html>")
    wide = printed_width_px() + 200
    (tmp_path / "b.html").write_text(
        "<html><body><article><h1>Too wide</h1>"
        f'<table><tr><td style="min-width:{wide}px">cells</td></tr></table>'
        f'<mjx-container display="true" style="display:block;overflow-x:auto">'
        f'<span style="display:inline-block;width:{wide}px">x</span></mjx-container>'
        "</article></body></html>"
    )
    book = build_pdf(tmp_path, toc=tmp_path / "_toc.yml", chromium=CHROMIUM, progress=False)
    assert sorted(what for _, what, _ in book.overflows) == ["mjx-container", "table"]
    assert {name for name, _, _ in book.overflows} == {"b.html"}
    assert all(width >= wide for _, _, width in book.overflows)
    assert [p.title for p in book.pages] == ["Fits", "Too wide"]
    assert len(PdfReader(book.pdf).pages) == book.front_pages + 2


def test_the_student_pdf_has_the_exercises_and_no_solutions(student_site, printed):
    from pypdf import PdfReader

    full = _pdf_text(PdfReader(printed.pdf), range(len(PdfReader(printed.pdf).pages)))
    html, _, books = student_site
    book = books[PDF_NAME]
    student = PdfReader(book.pdf)
    text = _pdf_text(student, range(len(student.pages)))
    assert book.pdf == html / "lora-clusters-book.pdf" and book.overflows == []
    assert full.count("Exercise") > 20 and text.count("Exercise") > 20
    assert "Solution to" in full and "Solution to" not in text
    assert len(student.pages) < len(PdfReader(printed.pdf).pages)
    # the student's exercise sheets: the problem sets, without solutions
    sheets = PdfReader(books[EXERCISES_PDF].pdf)
    hand_out = _pdf_text(sheets, range(len(sheets.pages)))
    assert hand_out.count("Exercise") > 20 and "Solution to" not in hand_out
    assert "without solutions" in _pdf_text(sheets, range(books[EXERCISES_PDF].front_pages))


@contextmanager
def visit(browser, html: Path, path: str):
    """Serve the site ``html`` on 127.0.0.1, open ``path`` in Chromium and yield
    (page, problems, outside): console and page errors, failed requests and HTTP
    errors, and requests that left 127.0.0.1, as they happen.  The page is closed
    on exit."""
    with StaticServer(html) as server:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        try:
            problems, outside = _watch(page)
            page.goto(server.url + path, wait_until="networkidle")
            yield page, problems, outside
        finally:
            page.close()


def _watch(page):
    problems, outside = watch_errors(page), []
    page.on("requestfailed", lambda req: problems.append(f"failed request: {req.url}"))
    page.on("response", lambda resp: problems.append(f"HTTP {resp.status}: {resp.url}") if resp.status >= 400 else None)
    page.on(
        "request",
        lambda req: (
            outside.append(req.url)
            if urlparse(req.url).scheme in ("http", "https") and urlparse(req.url).hostname != "127.0.0.1"
            else None
        ),
    )
    return problems, outside


# WCAG contrast ratio of every figure caption's text colour against the page background
CAPTION_CONTRAST = """() => {
  const rgb = s => s.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const lum = c => { const [r, g, b] = c.map(v => { v /= 255; return v <= 0.03928 ? v / 12.92
                                                     : Math.pow((v + 0.055) / 1.055, 2.4); });
                     return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const bg = lum(rgb(getComputedStyle(document.body).backgroundColor));
  return [...document.querySelectorAll('figcaption, p.caption')].map(el => {
    const fg = lum(rgb(getComputedStyle(el).color));
    return (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
  });
}"""


@pytest.mark.parametrize("docname", toc_pages())
def test_page_in_chromium(built, browser, docname):
    html, _ = built
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with visit(browser, html, docname + ".html") as (page, problems, outside):
        has_math = page.evaluate("() => document.querySelectorAll('.math, span.math, div.math').length") > 0
        if has_math:
            page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=30000)
            page.evaluate("() => MathJax.startup.promise")
            assert page.evaluate("() => document.querySelectorAll('mjx-container').length") > 0, "math not typeset"
            assert page.evaluate("() => document.querySelectorAll('mjx-merror').length") == 0, "MathJax errors"
        # figure captions readable: contrast of their text against the page at least 4.5:1
        contrast = page.evaluate(CAPTION_CONTRAST)
        assert all(c >= 4.5 for c in contrast), contrast
        body = page.evaluate("() => document.querySelector('main, article, body').innerText")
        assert "$$" not in body and "\\begin{" not in body, "raw TeX left on the page"
        broken = page.evaluate(
            "() => [...document.images].filter(i => !i.complete || i.naturalWidth === 0)"
            ".map(i => (i.src || '').slice(0, 80))"
        )
        assert broken == [], broken
        # an animation's player switches frames without a kernel
        if page.locator("img[id^='_anim_img']").count():
            image = page.locator("img[id^='_anim_img']").first
            before = image.get_attribute("src")
            page.locator("button[onclick*='next_frame']").first.click()
            page.wait_for_timeout(200)
            assert image.get_attribute("src") != before, "the animation did not advance"
        # a panel's static copy shows another picture when a control moves
        if page.locator(".lcsp").count():
            before = page.locator("img.lcsp-image").first.get_attribute("src")
            page.locator(".lcsp [data-lcsp-control]").first.focus()
            page.keyboard.press("ArrowRight")
            page.wait_for_function(
                "(src) => document.querySelector('img.lcsp-image').getAttribute('src') !== src", arg=before
            )
        page.screenshot(path=str(SCREENSHOTS / f"{docname.replace('/', '__')}.png"))
    assert outside == [], f"requests left 127.0.0.1: {outside}"
    assert problems == [], problems


def test_mathjax_loads_its_lazy_components_from_the_site(built, browser):
    # the reader's MathJax menu loads components on demand (the accessibility
    # explorer with the speech rule engine, the SVG renderer, the safe extension,
    # TeX extensions): they must all come from the vendored copy
    html, _ = built
    components = ["a11y/explorer", "a11y/assistive-mml", "ui/safe", "output/svg", "[tex]/physics"]
    with visit(browser, html, "book/ch02_stability.html") as (page, problems, outside):
        page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=30000)
        page.evaluate("() => MathJax.startup.promise")
        page.evaluate("(names) => MathJax.loader.load(...names)", components)  # rejects if one fails
        loaded = page.evaluate(
            "(names) => names.map(n => MathJax._.components.package.Package.packages.get(n)?.isLoaded)", components
        )
    assert loaded == [True] * len(components), dict(zip(components, loaded))
    assert outside == [] and problems == [], (outside, problems)


def test_search_finds_a_chapter_phrase(built, browser):
    html, _ = built
    with visit(browser, html, "search.html?q=Gronwall") as (page, problems, outside):
        page.wait_for_selector("#search-results ul.search li a, ul.search li a", timeout=30000)
        hits = page.evaluate("() => [...document.querySelectorAll('ul.search li a')].map(a => a.href)")
        page.screenshot(path=str(SCREENSHOTS / "search.png"))
    assert any("ch02_stability" in h for h in hits), hits
    assert outside == [] and problems == [], (outside, problems)


def test_every_panel_responds_without_a_kernel(built):
    # each chapter's panel is on its page as its static copy (lora_clusters.static_panels),
    # not as a dead widget, and adds at most 6 MB to the page
    from lora_clusters import static_panels

    html, _ = built
    for name in chapter_docnames():
        page = (html / f"{name}.html").read_text()
        assert page.count('<div class="lcsp"') == 1, name
        assert "application/vnd.jupyter.widget-view+json" not in page and "needs a live kernel" not in page, name
        names, shown = static_panels.embedded_states(page)
        # chapter 9's panel has two controls (seed, checkpoint); the others three or more
        assert len(names) >= 2 and len(set(image for image, _ in shown.values())) > 1, name
        block = re.search(r'<div class="lcsp".*?</script></div>', page, re.S)[0]
        assert len(block.encode()) <= 6_000_000, (name, len(block))
        assert "JupyterLab" in block and "settings" in block


def test_a_panel_picture_opens_at_full_size_on_a_phone(built, browser):
    # on a phone the site's stylesheet shrinks every output picture to the column; a
    # tap on a panel's picture must still show it at its own size, scrolling sideways
    # inside its frame (the page itself does not)
    html, _ = built
    with visit(browser, html, "book/ch06_toy_transformer.html") as (page, problems, outside):
        page.set_viewport_size({"width": 390, "height": 900})
        image = page.locator("img.lcsp-image").first
        image.scroll_into_view_if_needed()
        measure = """(img) => ({shown: img.getBoundingClientRect().width, natural: img.naturalWidth,
            page: document.scrollingElement.scrollWidth,
            frame: [img.parentElement.clientWidth, img.parentElement.scrollWidth]})"""
        before = image.evaluate(measure)
        image.click()
        zoomed = image.evaluate(measure)
        image.click()
        after = image.evaluate(measure)
    assert before["shown"] < 390 < before["natural"], before
    assert zoomed["shown"] == before["natural"] and zoomed["frame"][1] > zoomed["frame"][0] and zoomed["page"] <= 390
    assert after["shown"] == before["shown"]
    assert outside == [] and problems == [], (outside, problems)


def chapter_docnames() -> list[str]:
    from lora_book.slides import has_deck

    return [name for name in toc_pages() if has_deck(name)]


def test_every_chapter_links_its_lecture_slides(built):
    """Each chapter has its deck (lora_book.slides), linked from its download menu and
    under its title, made of its own statements, figures and numbers; the instructors'
    page links every deck."""
    from bs4 import BeautifulSoup

    from lora_book.slides import deck_path

    html, _ = built
    chapters = chapter_docnames()
    assert len(chapters) == 9, chapters
    instructors = (html / "book" / "instructors.html").read_text()
    for docname in chapters:
        deck = deck_path(docname)
        page = (html / f"{docname}.html").read_text()
        assert (html / deck).is_file(), deck
        assert page.count(f'href="../{deck}"') == 2, docname  # the menu and the line under the title
        assert f'href="../{deck}"' in instructors, docname
        shown = BeautifulSoup((html / deck).read_text(), "html.parser")
        slides = shown.select(".reveal .slides > section")
        kinds = [s["data-kind"] for s in slides]
        assert kinds[0] == "title" and kinds[-1] == "links" and "figure" in kinds, (docname, kinds)
        # the page's statements, figures (their images) and computed numbers
        soup = BeautifulSoup(page, "html.parser")
        statements = [
            box
            for box in soup.select("div.proof")
            if {"theorem", "proposition", "corollary"} & set(box["class"]) and not box.find_parent(id="exercises")
        ]
        assert kinds.count("statement") >= len(statements), docname
        page_images = {img["src"] for img in soup.select("figure img")}
        assert {img["src"] for img in shown.select("figure.deck-figure img")} <= page_images, docname
        numbers = [s.get_text() for s in shown.select(".pasted-text")]
        # each number of the deck is one of the page's own glued numbers (compared as
        # text: the raw HTML escapes quotes and ampersands)
        page_numbers = {s.get_text() for s in soup.select(".pasted-text")}
        assert numbers and set(numbers) <= page_numbers, (docname, sorted(set(numbers) - page_numbers))


@pytest.mark.parametrize("docname", chapter_docnames())
def test_lecture_slides_in_chromium(built, browser, docname):
    """Every slide of a chapter's deck renders at 1280x720 and fits, the right arrow key
    goes through the deck, and nothing fails or leaves the site."""
    from lora_book.slides import deck_path

    html, _ = built
    with visit(browser, html, deck_path(docname)) as (page, problems, outside):
        page.set_viewport_size({"width": 1280, "height": 720})
        page.evaluate("() => window.loraDeck.then(() => Reveal.layout())")
        found = walk_deck(page)
        page.screenshot(path=str(SCREENSHOTS / f"slides__{docname.split('/')[-1]}.png"))
    assert found["total"] == found["sections"] == found["ready"] > 3
    assert found["indices"] == list(range(found["total"]))
    assert found["formulas"] > 0 and found["errors"] == 0 and not found["raw_tex"]
    assert found["broken_images"] == [] and found["overflows"] == [], found["overflows"]
    assert outside == [] and problems == [], (outside, problems)


def test_favicon_ico_is_served_at_the_root(built):
    # browsers ask for /favicon.ico whatever the pages link; it used to be a 404
    import urllib.request

    html, _ = built
    with StaticServer(html) as server, urllib.request.urlopen(server.url + "favicon.ico") as response:
        data = response.read()
    assert response.status == 200 and data[:4] == b"\x00\x00\x01\x00"  # an ICO header


# what overflows its column on the page: displayed equations, code-cell inputs, printed
# outputs and tables, each with its own scroll width, box width and overflow style
OVERFLOW = """() => {
  const main = document.querySelector('article') || document.body;
  const right = main.getBoundingClientRect().right;
  const wide = (el) => el.scrollWidth > el.clientWidth + 1;
  const describe = (el) => [el.closest('[id]') ? el.closest('[id]').id : '?',
                            el.scrollWidth, el.clientWidth, getComputedStyle(el).overflowX];
  return {
    page: [document.scrollingElement.scrollWidth, window.innerWidth],
    equations: [...document.querySelectorAll('mjx-container[display="true"]')]
      .filter(el => wide(el) || el.getBoundingClientRect().right > right + 1).map(describe),
    code: [...document.querySelectorAll('div.cell_input pre')].filter(wide)
      .map(el => el.innerText.split('\\n').reduce((a, b) => a.length > b.length ? a : b, '')),
    outputs: [...document.querySelectorAll('div.cell_output pre')].filter(wide).map(describe),
    tables: [...document.querySelectorAll('article table')]
      .filter(el => el.scrollWidth > el.parentElement.clientWidth + 1)
      .map(el => [el.parentElement.className, getComputedStyle(el.parentElement).overflowX]),
    figures: [...document.querySelectorAll('figure.wide-figure')].map(el =>
      [el.querySelector('img').getBoundingClientRect().width, el.clientWidth, getComputedStyle(el).overflowX]),
  };
}"""


def measured(built, browser, docname) -> dict:
    """``{width: {"overflow": OVERFLOW's result, "too wide": TOO_WIDE's result}}`` for
    the page at 1280 and 390 px, each page loaded once per width for both tests (with a
    full-page screenshot for a reader to look at)."""
    if docname in _MEASURED:
        return _MEASURED[docname]
    html, _ = built
    found = {}
    with StaticServer(html) as server:
        for width in (1280, 390):
            page = browser.new_page(viewport={"width": width, "height": 900})
            try:
                page.goto(server.url + docname + ".html", wait_until="networkidle")
                if page.evaluate("() => document.querySelectorAll('.math').length") > 0:
                    page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
                    page.evaluate("() => MathJax.startup.promise")
                page.wait_for_function("() => [...document.images].every(i => i.complete)")
                found[width] = {"overflow": page.evaluate(OVERFLOW), "too wide": page.evaluate(TOO_WIDE)}
                page.screenshot(path=str(SCREENSHOTS / f"{docname.replace('/', '__')}-{width}.png"), full_page=True)
            finally:
                page.close()
    _MEASURED[docname] = found
    return found


_MEASURED: dict = {}


@pytest.mark.parametrize("docname", toc_pages())
def test_nothing_is_cut_off_at_the_edge_of_the_page(built, browser, docname):
    found = {width: result["overflow"] for width, result in measured(built, browser, docname).items()}
    desktop, phone = found[1280], found[390]
    # on a desktop every equation and every line of code fits its column
    assert desktop["equations"] == [], desktop["equations"]
    assert desktop["code"] == [], desktop["code"]
    for result in (desktop, phone):
        # the page itself never scrolls sideways ...
        assert result["page"][0] <= result["page"][1], result["page"]
        # ... what is wider than its column scrolls inside its own box
        assert all(style in ("auto", "scroll") for *_, style in result["equations"] + result["outputs"]), result
        assert all(style in ("auto", "scroll") for _, style in result["tables"]), result["tables"]
    # multi-panel figures scale to the column on a phone (they used to scroll sideways
    # in a box of their own, with nothing to say so): test_readable_on_every_screen
    assert all(img <= box + 1 for img, box, _ in phone["figures"]), phone["figures"]


# what a reader cannot see whole at the width of the window: printed text and tables
# of the cell outputs wider than their column (at 1280 px), pictures wider than the
# screen and displayed equations wider than their column (at 390 px, a phone)
TOO_WIDE = """() => {
  const where = (el) => (el.closest('[id]') || {}).id || '?';
  const vw = window.innerWidth;
  const column = (el) => el.closest('div.math, .cell_output, article') || document.body;
  return {
    outputs: [...document.querySelectorAll('.cell_output pre')]
      .filter(el => el.scrollWidth > el.parentElement.clientWidth + 1)
      .map(el => [where(el), 'pre', el.scrollWidth, el.parentElement.clientWidth]),
    tables: [...document.querySelectorAll('.cell_output table')]
      .filter(el => Math.max(el.scrollWidth, el.getBoundingClientRect().width)
                    > el.closest('.cell_output').clientWidth + 1)
      .map(el => [where(el), 'table', el.scrollWidth, el.closest('.cell_output').clientWidth]),
    images: [...document.querySelectorAll('article img')]
      .filter(el => el.getBoundingClientRect().right > vw + 1 || el.getBoundingClientRect().width > vw)
      .map(el => [where(el), 'img', Math.round(el.getBoundingClientRect().right), vw]),
    equations: [...document.querySelectorAll('mjx-container[display="true"]')]
      .filter(el => el.scrollWidth > el.clientWidth + 1
                    || el.getBoundingClientRect().right > column(el).getBoundingClientRect().right + 1)
      .map(el => [where(el), 'equation', el.scrollWidth, el.clientWidth]),
  };
}"""


@pytest.mark.parametrize("docname", toc_pages())
def test_readable_on_every_screen(built, browser, docname):
    """Nothing hidden past the edge of its column, even inside a scroll box: on a
    desktop (1280 px) no printed output or table of a cell is wider than its column;
    on a phone (390 px) no picture is wider than the screen and no displayed equation
    wider than its column."""
    found = {width: result["too wide"] for width, result in measured(built, browser, docname).items()}
    desktop, phone = found[1280], found[390]
    too_wide = desktop["outputs"] + desktop["tables"] + phone["images"] + phone["equations"]
    assert too_wide == [], too_wide
