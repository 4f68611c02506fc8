r"""MyST that reads the same in JupyterLab and on the site.

A chapter has two readers: Sphinx (myst-nb) builds the site, and jupyterlab-myst renders
the chapter's markdown cells when it is opened in JupyterLab (``make lab``).  The second
one sees one notebook at a time, knows no myst-nb directive and loads no bibliography,
so three constructs are written in a form both understand, and this module teaches
Sphinx the form:

- **Figures of computed outputs.**  A chapter glues its figure in a code cell
  (``glue("fig_x", fig, display=False)``) and captions it with a plain ``figure`` that has
  no image but a ``:glue:`` option::

      :::{figure}
      :name: fig-x
      :glue: fig_x

      Caption.
      :::

  JupyterLab shows the numbered caption under the code cell that drew the figure (it
  ignores the option it does not know); on the site :class:`Figure` renders it as
  myst-nb's ``{glue:figure}`` of that key.  A figure with an image path is the ordinary
  figure.
- **References to another chapter.**  A notebook in JupyterLab cannot number what another
  notebook holds, so a chapter refers to another chapter's equation, theorem or section
  with a Markdown link whose text says what it is, ``[the attention kernel](ch01_particles.md#eq-kernel)``:
  in JupyterLab the link opens that chapter; on the site :class:`ExplicitLinkText`
  points it at the label (an equation's anchor is ``equation-<label>``, which
  myst-parser's own link resolution would miss) and keeps the text.
- **Citations.**  ``[Koubbi et al., 2024](#koubbi2024lora)`` shows the author-year text in
  JupyterLab; on the site it links to the entry of the bibliography page.  The text must
  name the first author's surname and the year of the entry: the build warns (and so
  fails, with ``-W``) when it does not.

Within a chapter the usual roles (``{eq}``, ``{prf:ref}``, ``{numref}``, ``{ref}``) stay:
jupyterlab-myst numbers and resolves them inside the notebook.
"""

from __future__ import annotations

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx import addnodes
from sphinx.directives.patches import Figure as SphinxFigure
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util import logging
from sphinx.util.nodes import make_refnode

logger = logging.getLogger(__name__)


class Figure(SphinxFigure):
    """``figure`` with either an image path (the usual directive) or, without one, a
    ``:glue:`` key: then myst-nb's ``glue:figure`` of that key, with the same options."""

    required_arguments = 0
    optional_arguments = 1
    option_spec = {**SphinxFigure.option_spec, "glue": directives.unchanged_required}

    def run(self):
        key = self.options.pop("glue", None)
        if key is None:
            if not self.arguments:
                raise self.error("figure: give an image path, or no path and a ':glue:' key of a glued output")
            return super().run()
        if self.arguments:
            raise self.error(f"figure: give an image path or a ':glue:' key, not both (got {self.arguments[0]!r})")
        from myst_nb.ext.glue.directives import PasteFigureDirective

        unknown = set(self.options) - set(PasteFigureDirective.option_spec)
        if unknown:
            raise self.error(f"figure with ':glue:' does not take the options {sorted(unknown)}")
        paste = PasteFigureDirective(
            "glue:figure",
            [key],
            self.options,
            self.content,
            self.lineno,
            self.content_offset,
            self.block_text,
            self.state,
            self.state_machine,
        )
        return paste.run()


def _label_target(env, label: str) -> tuple[str, str] | None:
    """(document, anchor) of a label: a section or other std label, an equation, or a
    theorem-like block of sphinx-proof."""
    std = env.get_domain("std")
    if label in std.labels:
        docname, anchor, _ = std.labels[label]
        return docname, anchor
    if label in std.anonlabels:
        return std.anonlabels[label]
    equations = env.get_domain("math").equations
    if label in equations:
        return equations[label][0], nodes.make_id(f"equation-{label}")
    proofs = getattr(env, "proof_list", {})
    if label in proofs:
        return proofs[label]["docname"], label
    return None


def _citation(env, key: str):
    for citation in env.get_domain("cite").citations:
        if citation.key == key:
            return citation
    return None


def citation_mismatch(entry, text: str) -> str | None:
    """Why ``text`` does not read as a citation of the pybtex ``entry`` (its first
    author's surname and its year must appear), or None."""
    persons = entry.persons.get("author") or entry.persons.get("editor") or []
    surname = " ".join(persons[0].last_names).replace("{", "").replace("}", "") if persons else ""
    year = entry.fields.get("year", "")
    missing = [what for what in (surname, year) if what and what not in text]
    if missing:
        return f"the citation text {text!r} does not name {' and '.join(repr(m) for m in missing)}"
    return None


class ExplicitLinkText(SphinxPostTransform):
    """Markdown links with a text, to a label (``[text](#label)``) or to a label of
    another chapter (``[text](chapter.md#label)``): link to the label, show the text.

    Runs before myst-parser's resolver (priority 9), which would replace the text of a
    link to an equation by its number and cannot find an equation or theorem of another
    document from ``chapter.md#label``.
    """

    default_priority = 8

    def run(self, **kwargs) -> None:
        env = self.env
        for node in list(self.document.findall(addnodes.pending_xref)):
            if node.get("reftype") != "myst" or not node.get("refexplicit"):
                continue
            in_document = node.get("refdomain") == "doc"
            if in_document:
                docname, label = node["reftarget"], node.get("reftargetid")
                slugs = env.metadata.get(docname, {}).get("myst_slugs", {})
                if not label or label in slugs:
                    continue  # a whole document or a heading anchor: myst-parser's own job
            else:
                docname, label = None, node["reftarget"]
            citation = _citation(env, label)
            if citation is not None:
                target = citation.bibliography_key.docname, citation.citation_id
                problem = citation_mismatch(citation.entry, node.astext())
                if problem:
                    logger.warning(f"{problem} (entry {label!r} of the bibliography)", location=node)
            else:
                target = _label_target(env, label)
            if target is None:
                continue  # myst-parser reports it
            if in_document and target[0] != docname:
                logger.warning(
                    f"link to {docname}#{label}: the label {label!r} is in {target[0]!r}",
                    location=node,
                )
            fromdoc = node.get("refdoc", env.docname)
            reference = make_refnode(self.app.builder, fromdoc, target[0], target[1], node[0].deepcopy())
            node.replace_self(reference)


def setup(app) -> dict:
    """Register the portable figure and link handling (:func:`lora_book.setup` calls it;
    it is also a Sphinx extension of its own)."""
    app.add_directive("figure", Figure, override=True)
    app.add_post_transform(ExplicitLinkText)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
