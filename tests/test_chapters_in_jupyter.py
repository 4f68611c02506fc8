"""Each chapter runs top to bottom in a fresh kernel the way JupyterLab opens it
(jupytext converts the MyST markdown to a notebook), with no error output; then,
in the same kernel, every interactive panel the chapter displayed is driven control
by control, and what it shows must change with each move."""

import json

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

from lora_book import cache as bookcache

CHAPTERS = bookcache.chapter_paths()
CHAPTERS_WITH_PANELS = {
    "ch01_particles",
    "ch02_stability",
    "ch03_phase_transition",
    "ch04_low_rank",
    "ch05_orthogonal_lora",
}

# appended to the chapter: the panels are the displayed results kept in IPython's Out
DRIVE_PANELS = r"""
import hashlib as _hashlib, json as _json
from lora_clusters import widgets as _widgets

def _digest(panel):
    image = _widgets.shown_image(panel.output)
    return None if image is None else _hashlib.sha256(image).hexdigest()

_report = []
for _panel in [o for o in Out.values() if hasattr(o, "controls") and hasattr(o, "output")]:
    for _name, _control in _panel.controls.items():
        _before, _summary = _digest(_panel), _panel.summary.value
        _new = _widgets.another_value(_control)
        _control.value = _new
        _report.append({"panel": type(_panel).__name__, "control": _name, "new": repr(_new),
                        "applied": _panel.values()[_name] == _new, "before": _before, "after": _digest(_panel),
                        "summary_before": _summary, "summary_after": _panel.summary.value})
print("PANEL-REPORT " + _json.dumps(_report))
"""


@pytest.mark.book
@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_runs_in_fresh_kernel_and_its_panels_respond(path, monkeypatch):
    # chapters that train networks run at their smallest scale here (the kernel inherits
    # the environment); the committed cache holds the scale the site shows
    monkeypatch.setenv("LORA_BOOK_SCALE", "smoke")
    nb = jupytext.read(path)
    n_chapter_cells = len(nb.cells)
    nb.cells.append(nbformat.v4.new_code_cell(DRIVE_PANELS))
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    code = [c for c in nb.cells[:n_chapter_cells] if c.cell_type == "code"]
    assert code and all(c.get("execution_count") for c in code)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            assert out.output_type != "error", out
            assert not (out.output_type == "stream" and out.name == "stderr" and "Warning" in out.text), out.text
    nbformat.validate(nb)

    printed = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    report = json.loads(printed.split("PANEL-REPORT ", 1)[1])
    if path.stem in CHAPTERS_WITH_PANELS:
        assert report, f"{path.stem} displays a panel, but none was found in the kernel"
    for move in report:
        label = f"{move['panel']}.{move['control']} -> {move['new']}"
        assert move["applied"], label
        assert move["before"] is not None and move["after"] is not None, f"{label}: the panel shows no figure"
        assert move["after"] != move["before"], f"{label}: the figure did not change"


@pytest.mark.book
def test_the_lora_chapter_runs_on_imdb_when_data_is_given(tmp_path, monkeypatch):
    """`make gpu DATA=/path/to/aclImdb` in miniature: the LoRA chapter, at the smoke
    scale, on an aclImdb folder (made here: 24 reviews per label) read through
    LORA_BOOK_DATA; its glued numbers say which data it ran on."""
    for split in ("train", "test"):
        for label, word in (("pos", "wonderful"), ("neg", "dreadful")):
            folder = tmp_path / "aclImdb" / split / label
            folder.mkdir(parents=True)
            for k in range(12):
                (folder / f"{k}_5.txt").write_text(f"A {word} film<br />number {k}.", encoding="utf-8")
    monkeypatch.setenv("LORA_BOOK_SCALE", "smoke")
    monkeypatch.setenv("LORA_BOOK_DATA", str(tmp_path))
    path = next(p for p in CHAPTERS if p.stem == "ch09_lora_language_model")
    nb = jupytext.read(path)
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    glued = {
        out["metadata"]["scrapbook"]["name"]: out["data"]["application/papermill.record/text/plain"]
        for cell in nb.cells
        for out in cell.get("outputs", [])
        if out.get("metadata", {}).get("scrapbook")
    }
    assert glued["lm_data"].strip("'").startswith("IMDb reviews")
    assert glued["lm_snippets"] == "48" and glued["lm_positive"] == "24"
    assert int(glued["lm_test_size"]) + int(glued["lm_train_size"]) == 48
