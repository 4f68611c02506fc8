"""lora_book: the build tooling of the book, kept apart from the science.

Nothing in :mod:`lora_clusters` imports this package; chapter outputs never depend
on it, so editing it does not re-run the book (a chapter's fingerprint hashes the
modules of :mod:`lora_clusters` it imports, nothing else).  One module per job:

- :mod:`lora_book.assets`: MathJax, RequireJS and the widget manager, vendored from npm;
- :mod:`lora_book.downloads`: executed notebooks in every chapter's download menu;
- :mod:`lora_book.provenance_table`: the ``{provenance-table}`` directive;
- :mod:`lora_book.solutions`: the student version without solutions;
- :mod:`lora_book.cache`: status and housekeeping of the committed jupyter-cache;
- :mod:`lora_book.fingerprint`: the library fingerprint written into every chapter;
- :mod:`lora_book.wheel`: the library as a wheel at the root of the site;
- :mod:`lora_book.pdf`: the whole book and the exercise sheets as PDFs, printed from
  the built site;
- :mod:`lora_book.figures`: every figure of the built site as an image file, for slides;
- :mod:`lora_book.slides`: a reveal.js lecture deck of every chapter, cut out of its
  built page (and the ``{lecture-slides}`` role that links one);
- :mod:`lora_book.site_server`: the built site on 127.0.0.1 (the printer and the tests);
- :mod:`lora_book.glued`: computed numbers in the prose, on the site and in JupyterLab;
- :mod:`lora_book.macros`: the book's LaTeX macros, for JupyterLab as for the site;
- :mod:`lora_book.portable`: figures, links to other chapters and citations written so
  that JupyterLab and the site both render them;
- :mod:`lora_book.repository`: where the book's repository is (one definition);
- :mod:`lora_book.chapter_rewrite`: what ``fingerprint`` and ``macros`` share (stale or
  updated chapters, ``--update``/``--check``).

One setting of ``_config.yml``, ``lora_repository_url`` (under ``sphinx: config:``),
turns on the theme's repository, issue and launch buttons when it names a public
repository; it is empty by default, and then the site links nothing outside itself.

This package is also the Sphinx extension named in ``_config.yml``: :func:`setup`.
"""

from __future__ import annotations

import os
from pathlib import Path

OWN_STATIC = Path(__file__).resolve().parent / "_static"
#: files copied to the root of the site: favicon.ico, which browsers ask for there
OWN_EXTRA = Path(__file__).resolve().parent / "_extra"


def _add_static(app) -> None:
    from .assets import ensure_assets

    app.config.html_static_path.extend([str(ensure_assets()), str(OWN_STATIC)])
    app.config.html_extra_path.append(str(OWN_EXTRA))
    if app.builder.format == "html":
        from .wheel import build_wheel

        folder = Path(app.outdir).parent / "wheel"
        build_wheel(folder)
        app.config.html_extra_path.append(str(folder))


def tooling_fingerprint(package: Path | None = None) -> str:
    """A hash of this package's files (code, styles, scripts): Sphinx re-reads and
    re-writes every page when it changes, so an incremental ``make book`` after an update
    of the tooling (a new download, another link rule) leaves no page as it was."""
    from lora_clusters.code_hash import folder_hash

    return folder_hash(package or Path(__file__).resolve().parent)


def _set_tooling_fingerprint(app, config) -> None:
    config.lora_book_tooling = tooling_fingerprint()


def _no_top_bar(app, config) -> None:
    """No pydata top bar above the book theme's layout. The pydata theme fills its
    ``navbar_persistent`` with a search button whenever the option is unset (the book
    theme's empty default does not count), which drew a 64-px bar on every page: a
    second search button beside the sidebar's, and the sidebar, sticky at the top of
    the window, scrolled the book title under it. The sidebar keeps its search field
    (and Ctrl+K), and the article's own header keeps the buttons on a phone."""
    options = dict(config.html_theme_options or {})
    options.setdefault("navbar_persistent", [])
    config.html_theme_options = options


def _repository_buttons(app, config) -> None:
    """With ``lora_repository_url`` set, the theme's repository, issue and launch buttons."""
    url = (config.lora_repository_url or "").strip()
    if not url:
        return
    options = dict(config.html_theme_options or {})
    options.update(
        repository_url=url,
        use_repository_button=True,
        use_issues_button=True,
        use_edit_page_button=False,
        path_to_docs="",
        repository_branch="main",
        launch_buttons={"binderhub_url": "https://mybinder.org", "notebook_interface": "jupyterlab"},
    )
    config.html_theme_options = options


def _drop_solution_nodes(app, doctree, docname) -> None:
    from .solutions import student_mode

    if not student_mode():
        return
    from sphinx_exercise.nodes import solution_node

    for node in list(doctree.findall(solution_node)):
        node.parent.remove(node)


def _strip_downloaded_sources(app, exception) -> None:
    from .solutions import strip_solutions, student_mode

    if exception is not None or not student_mode() or app.builder.format != "html":
        return
    for source in (Path(app.outdir) / "_sources").rglob("*.md"):
        source.write_text(strip_solutions(source.read_text()))


def setup(app):
    from lora_clusters import progress, static_panels

    from .downloads import offer_figures, offer_notebook, offer_pdf, offer_slides, offer_wheel
    from .provenance_table import FillProvenance, ProvenanceTable, provenance_placeholder, refresh_provenance_pages

    # the kernels that execute the chapters inherit this: no progress bar in a page
    os.environ[progress.ENV] = "off"
    # and they are executed for the website: every panel carries its static copy (the
    # pictures of its grid of values, lora_clusters.static_panels), which the site shows
    # in place of the live widget (nb_mime_priority_overrides in _config.yml)
    os.environ[static_panels.ENV] = "1"
    app.add_config_value("lora_repository_url", "", "html")
    # not set by hand: the hash of this package (see tooling_fingerprint)
    app.add_config_value("lora_book_tooling", "", "env")
    app.connect("config-inited", _set_tooling_fingerprint)
    app.add_css_file("lora-clusters/book.css")
    app.connect("config-inited", _repository_buttons)
    app.connect("config-inited", _no_top_bar)
    app.add_node(provenance_placeholder)
    app.add_directive("provenance-table", ProvenanceTable)
    app.add_post_transform(FillProvenance)
    app.connect("env-get-outdated", refresh_provenance_pages)
    app.connect("builder-inited", _add_static)
    app.connect("html-page-context", offer_notebook, priority=400)  # before the theme builds its buttons
    app.connect("html-page-context", offer_wheel, priority=600)  # after it
    app.connect("html-page-context", offer_pdf, priority=610)
    app.connect("html-page-context", offer_figures, priority=620)
    app.connect("html-page-context", offer_slides, priority=630)
    # {lecture-slides}`ch02_stability`: a link to that chapter's deck (lora_book.slides)
    from .slides import lecture_slides_role

    app.add_role("lecture-slides", lecture_slides_role)
    # {eval}`glued("name", "fmt")` in the prose: the glued value, from the cache
    # (myst-nb's own eval role needs a live kernel; see lora_book.glued)
    from .glued import glued_role

    app.add_role("eval", glued_role(), override=True)
    # captioned glued figures, links across chapters, citations: one source for the
    # site and for JupyterLab (see lora_book.portable)
    from . import portable

    portable.setup(app)
    app.connect("doctree-resolved", _drop_solution_nodes)
    app.connect("build-finished", _strip_downloaded_sources)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
