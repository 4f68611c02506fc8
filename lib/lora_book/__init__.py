"""lora_book: the build tooling of the book, kept apart from the science.

Nothing in :mod:`lora_clusters` imports this package; chapter outputs never depend
on it, so editing it does not re-run the book (the library fingerprint hashes
:mod:`lora_clusters` only).  One module per job:

- :mod:`lora_book.assets`: MathJax, RequireJS and the widget manager, vendored from npm;
- :mod:`lora_book.downloads`: executed notebooks in every chapter's download menu;
- :mod:`lora_book.provenance_table`: the ``{provenance-table}`` directive;
- :mod:`lora_book.solutions`: the student version without solutions;
- :mod:`lora_book.cache`: status and housekeeping of the committed jupyter-cache;
- :mod:`lora_book.fingerprint`: the library fingerprint written into every chapter.

This package is also the Sphinx extension named in ``_config.yml``: :func:`setup`.
"""

from __future__ import annotations

from pathlib import Path

OWN_STATIC = Path(__file__).resolve().parent / "_static"


def _add_static(app) -> None:
    from .assets import ensure_assets

    app.config.html_static_path.extend([str(ensure_assets()), str(OWN_STATIC)])


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
    from .downloads import offer_notebook
    from .provenance_table import FillProvenance, ProvenanceTable, provenance_placeholder, refresh_provenance_pages

    app.add_node(provenance_placeholder)
    app.add_directive("provenance-table", ProvenanceTable)
    app.add_post_transform(FillProvenance)
    app.connect("env-get-outdated", refresh_provenance_pages)
    app.connect("builder-inited", _add_static)
    app.connect("html-page-context", offer_notebook, priority=400)  # before the theme builds its buttons
    app.connect("doctree-resolved", _drop_solution_nodes)
    app.connect("build-finished", _strip_downloaded_sources)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
