"""A reader downloads a chapter and the library from the site and runs it elsewhere:
a fresh virtual environment, the wheel the site serves (dependencies from the package
index), the notebook executed there, and the same number as on the site."""

import json
import re
import subprocess
import sys
import urllib.request
from urllib.parse import urljoin

import pytest

from lora_clusters.glued import format_glued
from site_tools import StaticServer, build_site

pytestmark = pytest.mark.book

RUN = r"""
import json, sys
import nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
for cell in nb.cells:
    if cell.cell_type == "code":
        cell.outputs = []
# what jupyterlab-myst shows for {eval}`glued("w2_translation")` once the cells have run
nb.cells.append(nbformat.v4.new_code_cell('print(glued("w2_translation"))'))
NotebookClient(nb, timeout=900, kernel_name="python3").execute()
glued = {}
for cell in nb.cells:
    for out in cell.get("outputs", []):
        name = out.get("metadata", {}).get("scrapbook", {}).get("name")
        if name:  # myst-nb's glue keeps the value's repr under a record MIME type
            glued[name] = out["data"]["application/papermill.record/text/plain"]
print("GLUED " + json.dumps(glued))
print("EVAL " + nb.cells[-1].outputs[0]["text"].strip())
"""


def _glued(nb: dict) -> dict:
    return {
        out["metadata"]["scrapbook"]["name"]: out["data"]["application/papermill.record/text/plain"]
        for cell in nb["cells"]
        for out in cell.get("outputs", [])
        if out.get("metadata", {}).get("scrapbook", {}).get("name")
    }


def test_a_downloaded_chapter_runs_in_a_fresh_environment(tmp_path):
    html, _, _ = build_site(tmp_path / "site", pdf=False)
    with StaticServer(html) as server:
        page_url = server.url + "book/ch01_particles.html"
        page = urllib.request.urlopen(page_url).read().decode()
        links = re.findall(r'href="([^"]+\.(?:ipynb|whl))"', page)
        notebook_url = urljoin(page_url, next(link for link in links if link.endswith(".ipynb")))
        wheel_url = urljoin(page_url, next(link for link in links if link.endswith(".whl")))
        notebook = tmp_path / "ch01_particles.ipynb"
        notebook.write_bytes(urllib.request.urlopen(notebook_url).read())
        wheel = tmp_path / wheel_url.rsplit("/", 1)[1]
        wheel.write_bytes(urllib.request.urlopen(wheel_url).read())
    on_site = _glued(json.loads(notebook.read_text()))
    assert "w2_translation" in on_site

    venv = tmp_path / "reader-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    install = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", f"{wheel}[chapters]", "nbclient"], capture_output=True, text=True
    )
    assert install.returncode == 0, install.stderr[-3000:]
    subprocess.run(
        [python, "-m", "ipykernel", "install", "--sys-prefix", "--name", "python3"], check=True, capture_output=True
    )
    run = subprocess.run([python, "-c", RUN, str(notebook)], capture_output=True, text=True, cwd=tmp_path, timeout=1200)
    assert run.returncode == 0, run.stderr[-3000:]
    there = json.loads(run.stdout.split("GLUED ", 1)[1].split("\n", 1)[0])
    # the number the site shows, computed again by a reader's own installation
    assert there["w2_translation"] == on_site["w2_translation"]
    # the downloaded chapter loads the glued-number extension from the wheel (which holds
    # the science package alone), and the text the prose shows for a glued value is the site's
    first_code = next(c for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code")
    assert "%load_ext lora_clusters.glued" in "".join(first_code["source"])
    assert run.stdout.split("EVAL ", 1)[1].strip() == format_glued(on_site["w2_translation"])
    assert there["n_clusters_identity"] == on_site["n_clusters_identity"]
