"""The ``{provenance-table}`` directive of the Reproducibility page.

One row per chapter notebook with the machine and the package versions its cached
outputs were computed with (the record :func:`lora_clusters.provenance.record`
writes inside the chapter), then the packages of the environment building the site.
"""

from __future__ import annotations

from docutils import nodes
from sphinx.addnodes import pending_xref
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util.docutils import SphinxDirective

from .downloads import cached_notebook, is_notebook


class provenance_placeholder(nodes.General, nodes.Element):
    """Where ``{provenance-table}`` stood; replaced once every chapter has been read."""


class ProvenanceTable(SphinxDirective):
    """``{provenance-table}``: replaced by :class:`FillProvenance` after reading."""

    def run(self):
        self.env.lora_provenance_docs = getattr(self.env, "lora_provenance_docs", set()) | {self.env.docname}
        return [provenance_placeholder()]


class FillProvenance(SphinxPostTransform):
    default_priority = 8  # before cross-references are resolved

    def run(self, **kwargs):
        for node in list(self.document.findall(provenance_placeholder)):
            node.replace_self(_provenance_nodes(self.app, self.env.docname))


def refresh_provenance_pages(app, env, added, changed, removed):
    """The table depends on every chapter's outputs, not on its own source."""
    return sorted(getattr(env, "lora_provenance_docs", set()) & env.found_docs)


def table(header, rows) -> nodes.table:
    """A docutils table with the given header and rows (cells: text or nodes)."""
    table = nodes.table(classes=["colwidths-auto"])
    group = nodes.tgroup(cols=len(header))
    table += group
    for _ in header:
        group += nodes.colspec(colwidth=1)
    head = nodes.thead()
    group += head
    head += nodes.row("", *(nodes.entry("", nodes.paragraph(text=h)) for h in header))
    body = nodes.tbody()
    group += body
    for cells in rows:
        body += nodes.row(
            "", *(nodes.entry("", c if isinstance(c, nodes.Node) else nodes.paragraph(text=str(c))) for c in cells)
        )
    return table


def _stored_results(used: list[dict]) -> str:
    """Which runs, at which scale, on which device, when, and whether stale."""
    described = [
        f"{u['experiment']}/{u['name']}: {u['scale']}, {u['device']}, {u['created']}"
        + (" (stale: older code)" if u.get("status") == "stale" else "")
        for u in used
    ]
    return "; ".join(described) or "-"


def _provenance_nodes(app, docname):
    from lora_clusters import provenance, store

    from .cache import outputs_with

    rows = []
    for chapter in sorted(d for d in app.env.found_docs if is_notebook(app, d)):
        link = pending_xref(
            refdoc=docname, reftarget="/" + chapter, reftype="doc", refdomain="std", refexplicit=False, refwarn=True
        )
        link += nodes.inline(text=chapter)
        nb = cached_notebook(app, chapter)
        record = None if nb is None else provenance.find_record(nb)
        used = [] if nb is None else outputs_with(nb, store.MIME)
        if record is None:
            values = ["(no record: the chapter has no provenance cell)", "", "", "", "", "", "", ""]
        else:
            packages = record.get("packages", {})
            values = [
                record.get("device", "?"),
                ", ".join(sorted({u["scale"] for u in used})) or "-",
                record.get("python", "?"),
                packages.get("numpy", "-"),
                packages.get("torch", "-"),
                record.get("lib_fingerprint", "?"),
                record.get("executed_at", "?"),
                _stored_results(used),
            ]
        rows.append([nodes.paragraph("", "", link), *values])
    header = [
        "Chapter",
        "Outputs computed on",
        "Scale",
        "Python",
        "numpy",
        "torch",
        "lib fingerprint",
        "When (UTC)",
        "Stored results shown (scale, device, computed)",
    ]
    versions = provenance.package_versions()
    return [
        table(header, rows),
        nodes.paragraph(text="Packages of the environment that built this site:"),
        table(["Package", "Version"], list(versions.items())),
    ]
