"""Each chapter runs top to bottom in a fresh kernel the way JupyterLab opens it
(jupytext converts the MyST markdown to a notebook), with no error output."""

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

from lora_clusters import bookcache

CHAPTERS = bookcache.chapter_paths()


# same xdist group as the book build: two kernels started at once by parallel workers
# can race for the same ZMQ ports and hang, so kernel-launching tests run on one worker
@pytest.mark.book
@pytest.mark.xdist_group("kernels")
@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_runs_in_fresh_kernel(path):
    nb = jupytext.read(path)
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.get("execution_count") for c in code)
    for cell in code:
        for out in cell.get("outputs", []):
            assert out.output_type != "error", out
            assert not (out.output_type == "stream" and out.name == "stderr" and "Warning" in out.text), out.text
    nbformat.validate(nb)
