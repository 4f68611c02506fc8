"""MyST written once for JupyterLab and the site (lora_book.portable).

The chapters refer to other chapters and cite papers with Markdown links, and caption
glued figures with a ``figure`` that has a ``:glue:`` key, because jupyterlab-myst renders
those and not myst-nb's roles.  Here: the chapters keep to that, and a small Sphinx
project built with the extension shows each link's text at the right anchor, and warns
about a citation text that names the wrong paper or a label in the wrong chapter.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pybtex.database
import pytest

from lora_book.portable import citation_mismatch

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("ch0*.md"))
# pages that are not notebooks but link to the chapters and cite with the same rules
LINKING_PAGES = CHAPTERS + [ROOT / "book" / name for name in ("preface.md", "errata.md")]
BIB = pybtex.database.parse_file(ROOT / "book" / "references.bib")
LINK = re.compile(r"\[(?P<text>[^\]]+)\]\((?P<path>[\w.]*\.md)?#(?P<label>[\w:.-]+)\)")
ROLE = re.compile(r"\{(?:ref|numref|eq|prf:ref)\}`(?:[^`<]*<)?(?P<label>[\w:.-]+)>?`")


def _labels(text: str) -> set[str]:
    """The labels a chapter defines: targets, directive names and labels, equations."""
    found = set(re.findall(r"^\(([\w:.-]+)\)=", text, re.M))
    found |= set(re.findall(r"^:(?:name|label):\s*(\S+)", text, re.M))
    found |= set(re.findall(r"^\$\$\s*\(([\w:.-]+)\)", text, re.M))
    return found


@pytest.mark.parametrize("chapter", LINKING_PAGES, ids=lambda p: p.stem)
def test_chapters_use_only_what_jupyterlab_renders(chapter):
    text = chapter.read_text()
    assert "{cite" not in text, "cite with a Markdown link: [Author et al., 2024](#key)"
    assert "{glue:figure}" not in text, "caption a glued figure with :::{figure} and :glue: key"
    own = _labels(text)
    # roles resolve in JupyterLab only inside the notebook
    elsewhere = sorted({m["label"] for m in ROLE.finditer(text)} - own)
    assert elsewhere == [], f"roles to labels of other chapters (use a Markdown link): {elsewhere}"
    for link in LINK.finditer(text):
        label, path = link["label"], link["path"]
        if label in BIB.entries:
            assert path is None
            assert citation_mismatch(BIB.entries[label], link["text"]) is None, link.group(0)
        elif path is None:
            assert label in own, f"{link.group(0)}: no such label in this chapter"
        else:
            target = (ROOT / "book" / path).read_text()
            assert label in _labels(target), f"{link.group(0)}: no such label in {path}"


def test_every_figure_of_a_chapter_has_a_glued_output_or_an_image():
    for chapter in CHAPTERS:
        text = chapter.read_text()
        glued = set(re.findall(r"""glue(?:_figure)?\(\s*["'](\w+)["']""", text))
        for block in re.findall(r"^:::\{figure\}(.*?)^:::", text, re.M | re.S):
            key = re.search(r"^:glue:\s*(\S+)", block, re.M)
            assert key and key.group(1) in glued, (chapter.name, block[:80])


def test_citation_text_must_name_the_first_author_and_the_year():
    entry = BIB.entries["koubbi2024lora"]
    assert citation_mismatch(entry, "Koubbi et al., 2024") is None
    assert "'2024'" in citation_mismatch(entry, "Koubbi et al., 2023")
    assert "'Koubbi'" in citation_mismatch(entry, "Geshkovski et al., 2024")
    # a surname with TeX accents is compared without braces
    assert citation_mismatch(BIB.entries["dormand1980family"], "Dormand and Prince, 1980") is None


SITE = {
    "conf.py": """
        extensions = ["myst_nb", "sphinx_proof", "sphinxcontrib.bibtex", "lora_book.portable"]
        myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
        bibtex_bibfiles = ["refs.bib"]
        bibtex_reference_style = "author_year"
        numfig = True
        math_numfig = True
        nb_execution_mode = "off"
        exclude_patterns = ["_build"]
        """,
    "refs.bib": """
        @article{lovelace1843,
          author = {Lovelace, Ada and Babbage, Charles},
          title = {Notes on the analytical engine},
          journal = {Taylor's Scientific Memoirs},
          year = {1843}
        }
        """,
    "index.md": """
        # Home

        ```{toctree}
        one
        two
        refs
        ```
        """,
    "one.md": """
        (sec-one)=
        # One

        $$
        x = 1
        $$ (eq-one)

        :::{prf:theorem} Big
        :label: thm-big

        True.
        :::
        """,
    "two.md": """
        # Two

        See [the equation](one.md#eq-one), [the theorem](one.md#thm-big),
        [section one](one.md#sec-one), [the same equation](#eq-one) and
        [Lovelace and Babbage (1843)](#lovelace1843).
        """,
    "refs.md": """
        # References

        ```{bibliography}
        :all:
        ```
        """,
}


def _build(folder: Path, extra: dict[str, str] | None = None) -> tuple[Path, str]:
    for name, text in {**SITE, **(extra or {})}.items():
        (folder / name).write_text(textwrap.dedent(text).lstrip())
    out = folder / "_build"
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "html", "-q", str(folder), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc.stderr


def _links(page: Path) -> dict[str, str]:
    html = page.read_text()
    return {
        re.sub(r"<[^>]+>", "", text): href
        for href, text in re.findall(r'<a class="reference internal" href="([^"]+)"[^>]*>(.*?)</a>', html, re.S)
    }


def test_links_keep_their_text_and_reach_the_label(tmp_path):
    out, warnings = _build(tmp_path)
    assert warnings.strip() == ""
    links = _links(out / "two.html")
    one = (out / "one.html").read_text()
    assert links["the equation"] == links["the same equation"] == "one.html#equation-eq-one"
    assert links["the theorem"] == "one.html#thm-big"
    assert links["section one"] == "one.html#sec-one"
    for anchor in ("equation-eq-one", "thm-big", "sec-one"):
        assert f'id="{anchor}"' in one
    # the citation links to its entry of the bibliography page, with the text as written
    page, anchor = links["Lovelace and Babbage (1843)"].split("#")
    assert page == "refs.html" and f'id="{anchor}"' in (out / "refs.html").read_text()
    assert "Lovelace" in re.search(rf'id="{anchor}".*?</div>', (out / "refs.html").read_text(), re.S).group(0)


def test_a_wrong_citation_or_chapter_is_reported(tmp_path):
    two = (
        SITE["two.md"]
        .replace("Lovelace and Babbage (1843)", "Babbage (1843)")
        .replace("one.md#thm-big", "two.md#thm-big")
    )
    _, warnings = _build(tmp_path, {"two.md": two})
    assert "does not name 'Lovelace'" in warnings
    assert "the label 'thm-big' is in 'one'" in warnings


def test_a_figure_needs_an_image_or_a_glued_key(tmp_path):
    page = """
        # Figures

        :::{figure}
        :name: fig-nothing

        A caption and nothing to show.
        :::
        """
    index = SITE["index.md"].replace("refs\n", "refs\n        figs\n")
    _, warnings = _build(tmp_path, {"figs.md": page, "index.md": index})
    assert "give an image path, or no path and a ':glue:' key" in warnings
