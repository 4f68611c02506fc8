"""Notebook downloads: every chapter page offers its executed notebook.

The notebook is the chapter plus the outputs the execution cache holds for it (the
cache stores code cells only; :func:`lora_book.cache.executed_chapter` puts them back),
so hidden cells, the provenance record among them, keep their outputs.  In the
student version its solutions are removed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .solutions import strip_solutions_from_notebook, student_mode


def is_notebook(app, pagename: str) -> bool:
    return "kernelspec" in app.env.metadata.get(pagename, {})


def cached_notebook(app, chapter: str) -> dict | None:
    """The chapter with its cached outputs as a plain dict, read once per build: the
    download menu and the provenance table both ask for it."""
    import nbformat

    from .cache import executed_chapter

    # kept on the application, which lives for one build (the environment is pickled
    # between builds and must not carry outputs along)
    notebooks = app.__dict__.setdefault("_lora_notebooks", {})
    if chapter not in notebooks:
        cache_path = Path(app.srcdir) / app.config.nb_execution_cache_path
        nb = executed_chapter(Path(app.env.doc2path(chapter)), cache_path)
        notebooks[chapter] = None if nb is None else json.loads(nbformat.writes(nb))
    nb = notebooks[chapter]
    return None if nb is None else json.loads(json.dumps(nb))  # a copy: callers may edit it


def drop_thebe(context) -> None:
    """Remove sphinx-thebe's scripts: the book has no launch buttons, the inline
    configuration names a CDN, and it is included twice (a console error)."""
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return

    def is_thebe(js) -> bool:
        name = str(getattr(js, "filename", js) or "")
        body = str(getattr(js, "attributes", {}).get("body", ""))
        return name.endswith("sphinx-thebe.js") or "THEBE_JS_URL" in body

    scripts[:] = [js for js in scripts if not is_thebe(js)]


def offer_notebook(app, pagename, templatename, context, doctree) -> None:
    """Copy the executed notebook next to the page sources and add it to the
    theme's download menu (the theme offers it only when a launch button is set)."""
    drop_thebe(context)
    if not is_notebook(app, pagename):
        return
    nb = cached_notebook(app, pagename)
    if nb is None:  # not cached (e.g. execution off): the copy myst-nb wrote
        executed = Path(app.outdir).parent / "jupyter_execute" / f"{pagename}.ipynb"
        if not executed.exists():
            return
        nb = json.loads(executed.read_text())
    target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    if student_mode():
        nb = strip_solutions_from_notebook(nb)
    nb = with_notebook_links(with_glued_numbers(without_widget_views(nb)))
    target.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    context["ipynb_source"] = f"{pagename}.ipynb"


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def without_widget_views(nb: dict) -> dict:
    """A panel's output without its widget view: a downloaded notebook carries no widget
    state, so JupyterLab, which prefers the view, would show "Error displaying widget:
    model not found" until the cell runs.  Its other renderings stay, the panel's static
    copy among them; running the cell brings the live panel back."""
    cells = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and any(WIDGET_VIEW in o.get("data", {}) for o in cell.get("outputs", [])):
            outputs = [
                {**o, "data": {k: v for k, v in o["data"].items() if k != WIDGET_VIEW}} if "data" in o else o
                for o in cell["outputs"]
            ]
            cell = {**cell, "outputs": outputs}
        cells.append(cell)
    return {**nb, "cells": cells}


GLUED_CELL = """\
# The numbers quoted in the text are {eval}`glued(...)` expressions: with jupyterlab-myst
# they appear when a markdown cell runs after the code above it. This records what the
# chapter glues (the book's repository does it in every kernel; see lora_clusters.glued).
%load_ext lora_clusters.glued"""


def with_glued_numbers(nb: dict) -> dict:
    """A downloaded chapter whose prose quotes glued numbers gets, before its first code
    cell, a cell that loads :mod:`lora_clusters.glued` (shipped in the site's wheel)."""
    if not any("{eval}`glued(" in "".join(c.get("source", "")) for c in nb["cells"] if c["cell_type"] == "markdown"):
        return nb
    cell = {
        "cell_type": "code",
        "execution_count": None,
        "id": "lora-book-glued",
        "metadata": {},
        "outputs": [],
        "source": GLUED_CELL,
    }
    first_code = next((k for k, c in enumerate(nb["cells"]) if c["cell_type"] == "code"), len(nb["cells"]))
    return {**nb, "cells": nb["cells"][:first_code] + [cell] + nb["cells"][first_code:]}


#: a Markdown link to another chapter's source (lora_book.portable), e.g. (ch01_particles.md#eq-kernel)
CHAPTER_LINK = re.compile(r"\]\((ch\d\d_\w+)\.md(#[\w:.-]+)?\)")


def with_notebook_links(nb: dict) -> dict:
    """Links to another chapter point at its downloaded notebook (``ch01_particles.ipynb``,
    the name the site serves it under), not at the MyST source a download lacks."""
    cells = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            source = "".join(cell.get("source", ""))
            cell = {**cell, "source": CHAPTER_LINK.sub(lambda m: f"]({m[1]}.ipynb{m[2] or ''})", source)}
        cells.append(cell)
    return {**nb, "cells": cells}


def _add_download(context, path: str, text: str, tooltip: str, icon: str, label: str) -> None:
    """Append a link to the site's file ``path`` to the page's download menu (the
    theme builds the menu before these handlers run)."""
    for group in context.get("header_buttons", []):
        if group.get("label") == "download-buttons":
            group["buttons"].append(
                {
                    "type": "link",
                    "url": context["pathto"](path, 1),
                    "text": text,
                    "tooltip": tooltip,
                    "icon": icon,
                    "label": label,
                }
            )


def offer_wheel(app, pagename, templatename, context, doctree) -> None:
    """Add the library's wheel to a chapter's download menu: the notebook needs
    ``lora_clusters`` to run anywhere else."""
    if not is_notebook(app, pagename):
        return
    from .wheel import wheel_name

    tooltip = "The lora_clusters package this notebook imports (pip install it with [chapters])"
    _add_download(context, wheel_name(), "library (.whl)", tooltip, "fas fa-box", "download-wheel-button")


def offer_pdf(app, pagename, templatename, context, doctree) -> None:
    """Add the whole book as one PDF and the exercise sheets (:mod:`lora_book.pdf`,
    printed after the build by ``make book``) to every page's download menu."""
    from .pdf import EXERCISES_PDF, PDF_NAME

    tooltip = "Every chapter in one printable PDF"
    _add_download(context, PDF_NAME, "whole book (.pdf)", tooltip, "fas fa-book", "download-book-pdf-button")
    tooltip = "The exercises of every chapter, printable"
    _add_download(context, EXERCISES_PDF, "exercises (.pdf)", tooltip, "fas fa-pen", "download-exercises-button")


def offer_figures(app, pagename, templatename, context, doctree) -> None:
    """Add every figure of the book as image files (:mod:`lora_book.figures`, written
    after the build by ``make book``) to every page's download menu."""
    from .figures import FIGURES_ZIP

    tooltip = "Every figure of the book as a PNG file, with its caption: for slides"
    _add_download(context, FIGURES_ZIP, "figures (.zip)", tooltip, "fas fa-images", "download-figures-button")


#: the line under a chapter's title that links its lecture slides (hidden on paper)
SLIDES_LINE = (
    '<p class="{link_class}"><a href="{url}" title="{tooltip}">'
    '<i class="fas fa-person-chalkboard" aria-hidden="true"></i>Lecture slides of this chapter</a></p>'
)


def offer_slides(app, pagename, templatename, context, doctree) -> None:
    """Link a chapter's lecture slides (:mod:`lora_book.slides`, written after the build
    by ``make book``) from its download menu and from a line under its title."""
    from .slides import LINK_CLASS, deck_path, has_deck

    if not has_deck(pagename):
        return
    deck = deck_path(pagename)
    tooltip = "This chapter as a reveal.js deck: its question, statements, figures and numbers"
    _add_download(context, deck, "slides (reveal.js)", tooltip, "fas fa-person-chalkboard", "download-slides-button")
    body = context.get("body")
    if isinstance(body, str) and "</h1>" in body:
        line = SLIDES_LINE.format(link_class=LINK_CLASS, url=context["pathto"](deck, 1), tooltip=tooltip)
        context["body"] = body.replace("</h1>", "</h1>\n" + line, 1)
