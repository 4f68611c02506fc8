"""Notebook downloads: every chapter page offers its executed notebook.

The notebook is the chapter plus the outputs the execution cache holds for it (the
cache stores code cells only; :func:`lora_book.cache.executed_chapter` puts them back),
so hidden cells, the provenance record among them, keep their outputs.  In the
student version its solutions are removed.
"""

from __future__ import annotations

import json
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
    target.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    context["ipynb_source"] = f"{pagename}.ipynb"


def offer_wheel(app, pagename, templatename, context, doctree) -> None:
    """Add the library's wheel to a chapter's download menu (after the theme built it):
    the notebook needs ``lora_clusters`` to run anywhere else."""
    if not is_notebook(app, pagename):
        return
    from .wheel import wheel_name

    for group in context.get("header_buttons", []):
        if group.get("label") == "download-buttons":
            group["buttons"].append(
                {
                    "type": "link",
                    "url": context["pathto"](wheel_name(), 1),
                    "text": "library (.whl)",
                    "tooltip": "The lora_clusters package this notebook imports (pip install it with [chapters])",
                    "icon": "fas fa-box",
                    "label": "download-wheel-button",
                }
            )


def offer_pdf(app, pagename, templatename, context, doctree) -> None:
    """Add the whole book as one PDF (:mod:`lora_book.pdf`, printed after the build by
    ``make book``) to every page's download menu."""
    from .pdf import PDF_NAME

    for group in context.get("header_buttons", []):
        if group.get("label") == "download-buttons":
            group["buttons"].append(
                {
                    "type": "link",
                    "url": context["pathto"](PDF_NAME, 1),
                    "text": "whole book (.pdf)",
                    "tooltip": "Every chapter in one printable PDF",
                    "icon": "fas fa-book",
                    "label": "download-book-pdf-button",
                }
            )
