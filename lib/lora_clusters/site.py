"""The website as a self-contained artefact: a Sphinx extension used by the book.

What it does, in build order:

* **Vendored scripts.**  MathJax 3, RequireJS and the Jupyter-widgets HTML manager
  are fetched once from the npm registry (pinned versions, checked against the
  registry's SHA-512 integrity strings), unpacked under
  ``<venv>/share/lora-clusters/static/vendor`` and copied into ``_static/vendor`` of
  every build.  ``_config.yml`` points ``mathjax_path`` and ``nb_ipywidgets_js`` at
  these copies, so a page never asks a CDN for anything: the site works opened from
  disk or from any static host without internet.
* **Notebook downloads.**  Every chapter page offers its executed notebook (.ipynb,
  from the execution cache, with every output) next to its MyST source (.md) in the
  download menu of the theme.
* **Provenance.**  The ``{provenance-table}`` directive lists, per chapter, where
  and with what its cached outputs were computed (recorded by
  :func:`lora_clusters.provenance.record` inside the chapter) and the versions of
  the build environment.
* **Student version.**  With ``LORA_BOOK_STUDENT=1`` in the environment (``make
  student-book``) every solution is removed from the pages, from the downloadable
  notebooks and from the downloadable sources.

``python -m lora_clusters.site fetch`` fetches the vendored scripts (``make setup``
runs it); ``python -m lora_clusters.site strip FILE.md`` prints a chapter without
its solutions.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import re
import shutil
import sys
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from docutils import nodes
from sphinx.addnodes import pending_xref
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util.docutils import SphinxDirective

ASSET_ROOT = Path(sys.prefix) / "share" / "lora-clusters"
STATIC_DIR = ASSET_ROOT / "static"
STUDENT_ENV = "LORA_BOOK_STUDENT"


@dataclass(frozen=True)
class Asset:
    """One npm package tarball and the part of it the site serves."""

    name: str
    version: str
    integrity: str  # npm's "dist.integrity": sha512-<base64>
    member: str  # file or folder inside the tarball
    target: str  # path under _static/
    exclude: tuple = ()  # regexes of member paths not to copy (source maps, unused bundles)

    @property
    def url(self) -> str:
        base = self.name.rsplit("/", 1)[-1]
        return f"https://registry.npmjs.org/{self.name}/-/{base}-{self.version}.tgz"


ASSETS = (
    Asset("mathjax", "3.2.2",
          "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw==",
          "package/es5", "vendor/mathjax",
          # the page loads the combined tex-mml-chtml.js, which lazily loads from the
          # folders (a11y, sre, ui, input and output extensions, fonts); the other
          # combined bundles (13 MB) are never requested, and latest.js would fetch
          # MathJax from a CDN
          exclude=(r"^package/es5/(tex-(chtml|svg|mml-svg)|mml-(chtml|svg)|node-main|latest)[^/]*\.js$",)),
    Asset("requirejs", "2.3.8",
          "sha512-7/cTSLOdYkNBNJcDMWf+luFvMriVm7eYxp4BcFCsAX0wF421Vyce5SXP17c+Jd5otXKGNehIonFlyQXSowL6Mw==",
          "package/require.js", "vendor/requirejs/require.js"),
    Asset("@jupyter-widgets/html-manager", "1.0.15",
          "sha512-5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzRhG9PTeQsRjF3FUTopvFi//SABeNz1yp47bCrJ3CQA==",
          "package/dist", "vendor/html-manager", exclude=(r"\.map$", r"/embed\.js", r"/libembed-amd\.js$")),
)


def _stamp(asset: Asset) -> Path:
    # what is unpacked depends on the exclusions too: a change of them unpacks again
    selection = hashlib.sha256(repr((asset.member, asset.target, asset.exclude)).encode()).hexdigest()[:10]
    return STATIC_DIR / ".stamps" / f"{asset.name.replace('/', '__')}-{asset.version}-{selection}"


def _check_integrity(data: bytes, asset: Asset) -> None:
    algorithm, expected = asset.integrity.split("-", 1)
    actual = base64.b64encode(hashlib.new(algorithm, data).digest()).decode()
    if actual != expected:
        raise RuntimeError(f"{asset.url}: {algorithm} integrity mismatch (got {actual}, expected {expected})")


def _unpack(data: bytes, asset: Asset) -> None:
    target = STATIC_DIR / asset.target
    if target.exists():
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = [m for m in tar.getmembers() if m.isfile()
                   and (m.name == asset.member or m.name.startswith(asset.member + "/"))
                   and not any(re.search(pattern, m.name) for pattern in asset.exclude)]
        if not members:
            raise RuntimeError(f"{asset.url} holds no {asset.member}")
        for member in members:
            relative = Path(member.name).relative_to(asset.member) if member.name != asset.member else Path()
            destination = target / relative if relative.parts else target
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(tar.extractfile(member).read())


def ensure_assets(verbose: bool = True) -> Path:
    """Download and unpack every :data:`ASSETS` entry that is not there yet; return
    the folder to add to ``html_static_path``."""
    for asset in ASSETS:
        stamp = _stamp(asset)
        if stamp.exists():
            continue
        if verbose:
            print(f"[lora_clusters.site] fetching {asset.name}@{asset.version} from the npm registry", file=sys.stderr)
        try:
            with urllib.request.urlopen(asset.url, timeout=120) as response:
                data = response.read()
        except OSError as err:
            raise RuntimeError(f"could not download {asset.url} ({err}); the site vendors MathJax and the widget "
                               "manager from the npm registry at set-up time, so it must be reachable once") from err
        _check_integrity(data, asset)
        _unpack(data, asset)
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(asset.url + "\n")
    return STATIC_DIR


# --- solutions ----------------------------------------------------------------------------------------------

_FENCE = re.compile(r"^(`{3,}|:{3,})\s*\{(solution|solution-start|solution-end)\}")


def strip_solutions(text: str) -> str:
    """MyST text without its solutions: every ``{solution}`` directive and every
    ``{solution-start}`` ... ``{solution-end}`` block (fences included) is removed."""
    out, lines, i = [], text.splitlines(keepends=True), 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            out.append(lines[i])
            i += 1
            continue
        fence, kind = match.group(1), match.group(2)
        if kind == "solution-end":
            raise ValueError(f"line {i + 1}: solution-end without a solution-start")
        # skip to the closing fence of this directive (same character, at least as long)
        closing = re.compile(rf"^{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        i += 1
        while i < len(lines) and not closing.match(lines[i]):
            i += 1
        i += 1
        if kind == "solution-start":
            while i < len(lines) and not (_FENCE.match(lines[i]) and _FENCE.match(lines[i]).group(2) == "solution-end"):
                i += 1
            if i == len(lines):
                raise ValueError("solution-start without a solution-end")
            end_fence = _FENCE.match(lines[i]).group(1)
            closing = re.compile(rf"^{re.escape(end_fence[0])}{{{len(end_fence)},}}\s*$")
            i += 1
            while i < len(lines) and not closing.match(lines[i]):
                i += 1
            i += 1
    return re.sub(r"\n{3,}", "\n\n", "".join(out))


def strip_solutions_from_notebook(nb: dict) -> dict:
    """The same for a notebook (as a dict): cells inside a gated solution are
    dropped, and the solution parts of the markdown cells that open or close one."""
    cells, inside = [], False
    for cell in nb["cells"]:
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        if cell["cell_type"] != "markdown":
            if not inside:
                cells.append(cell)
            continue
        text = ("```{solution-start} _\n```\n" if inside else "") + source
        starts = len(re.findall(r"^(?:`{3,}|:{3,})\s*\{solution-start\}", text, re.MULTILINE))
        ends = len(re.findall(r"^(?:`{3,}|:{3,})\s*\{solution-end\}", text, re.MULTILINE))
        inside = starts > ends
        if inside:
            text += "\n```{solution-end}\n```\n"
        kept = strip_solutions(text).strip("\n")
        if kept:
            cells.append({**cell, "source": kept})
    return {**nb, "cells": cells}


def student_mode() -> bool:
    return os.environ.get(STUDENT_ENV, "").strip().lower() in {"1", "true", "yes"}


# --- Sphinx extension ------------------------------------------------------------------------------------


OWN_STATIC = Path(__file__).resolve().parent / "_static"


def _add_vendored_static(app) -> None:
    app.config.html_static_path.extend([str(ensure_assets()), str(OWN_STATIC)])


def _drop_thebe(context) -> None:
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


def _is_notebook(app, pagename: str) -> bool:
    return "kernelspec" in app.env.metadata.get(pagename, {})


def _offer_notebook(app, pagename, templatename, context, doctree) -> None:
    """Copy the executed notebook next to the page sources and add it to the
    theme's download menu (the theme offers it only when a launch button is set)."""
    _drop_thebe(context)
    if not _is_notebook(app, pagename):
        return
    nb = _cached_notebook(app, pagename)
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


def _drop_solution_nodes(app, doctree, docname) -> None:
    if not student_mode():
        return
    from sphinx_exercise.nodes import solution_node

    for node in list(doctree.findall(solution_node)):
        node.parent.remove(node)


def _strip_downloaded_sources(app, exception) -> None:
    if exception is not None or not student_mode() or app.builder.format != "html":
        return
    for source in (Path(app.outdir) / "_sources").rglob("*.md"):
        source.write_text(strip_solutions(source.read_text()))


class provenance_placeholder(nodes.General, nodes.Element):
    """Where ``{provenance-table}`` stood; replaced once every chapter has been read."""


class ProvenanceTable(SphinxDirective):
    """``{provenance-table}``: one row per chapter notebook with the machine and the
    package versions its cached outputs were computed with, then the packages of the
    environment building the site."""

    def run(self):
        self.env.lora_provenance_docs = getattr(self.env, "lora_provenance_docs", set()) | {self.env.docname}
        return [provenance_placeholder()]


class FillProvenance(SphinxPostTransform):
    default_priority = 8  # before cross-references are resolved

    def run(self, **kwargs):
        for node in list(self.document.findall(provenance_placeholder)):
            node.replace_self(_provenance_nodes(self.app, self.env.docname))


def _refresh_provenance_pages(app, env, added, changed, removed):
    # the table depends on every chapter's outputs, not on its own source
    return sorted(getattr(env, "lora_provenance_docs", set()) & env.found_docs)


def _table(header, rows) -> nodes.table:
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
        body += nodes.row("", *(nodes.entry("", c if isinstance(c, nodes.Node) else nodes.paragraph(text=str(c)))
                                for c in cells))
    return table


def _cached_notebook(app, chapter: str) -> dict | None:
    """The chapter with its cached outputs as a plain dict (see
    :func:`bookcache.executed_chapter`), read once per build: the download menu and
    the provenance table both ask for it."""
    import nbformat

    from . import bookcache

    # kept on the application, which lives for one build (the environment is pickled
    # between builds and must not carry outputs along)
    notebooks = app.__dict__.setdefault("_lora_notebooks", {})
    if chapter not in notebooks:
        cache_path = Path(app.srcdir) / app.config.nb_execution_cache_path
        nb = bookcache.executed_chapter(Path(app.env.doc2path(chapter)), cache_path)
        notebooks[chapter] = None if nb is None else json.loads(nbformat.writes(nb))
    nb = notebooks[chapter]
    return None if nb is None else json.loads(json.dumps(nb))  # a copy: callers may edit it


def _cached_provenance(app, chapter: str) -> dict | None:
    from . import provenance

    nb = _cached_notebook(app, chapter)
    return None if nb is None else provenance.find_record(nb)


def _provenance_nodes(app, docname):
    from . import provenance

    rows = []
    for chapter in sorted(d for d in app.env.found_docs if _is_notebook(app, d)):
        link = pending_xref(refdoc=docname, reftarget="/" + chapter, reftype="doc", refdomain="std",
                            refexplicit=False, refwarn=True)
        link += nodes.inline(text=chapter)
        record = _cached_provenance(app, chapter)
        if record is None:
            values = ["(no record: the chapter has no provenance cell)", "", "", "", "", ""]
        else:
            packages = record.get("packages", {})
            values = [record.get("device", "?"), record.get("python", "?"), packages.get("numpy", "-"),
                      packages.get("torch", "-"), record.get("lib_fingerprint", "?"), record.get("executed_at", "?")]
        rows.append([nodes.paragraph("", "", link), *values])
    header = ["Chapter", "Outputs computed on", "Python", "numpy", "torch", "lib fingerprint", "When (UTC)"]
    versions = provenance.package_versions()
    return [_table(header, rows),
            nodes.paragraph(text="Packages of the environment that built this site:"),
            _table(["Package", "Version"], list(versions.items()))]


def setup(app):
    app.add_node(provenance_placeholder)
    app.add_directive("provenance-table", ProvenanceTable)
    app.add_post_transform(FillProvenance)
    app.connect("env-get-outdated", _refresh_provenance_pages)
    app.connect("builder-inited", _add_vendored_static)
    app.connect("html-page-context", _offer_notebook, priority=400)  # before the theme builds its buttons
    app.connect("doctree-resolved", _drop_solution_nodes)
    app.connect("build-finished", _strip_downloaded_sources)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="site assets and student versions of the book")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fetch", help="download the vendored scripts (MathJax, RequireJS, widget manager)")
    strip = sub.add_parser("strip", help="print a MyST chapter without its solutions")
    strip.add_argument("path", type=Path)
    args = parser.parse_args(argv)
    if args.command == "fetch":
        print(ensure_assets())
    else:
        sys.stdout.write(strip_solutions(args.path.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
