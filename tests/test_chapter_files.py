"""Chapters stay byte-identical when JupyterLab opens, runs and saves them, so that a
reader's save never changes a chapter (nor, through it, the execution cache)."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import jupytext
import pytest
from jupyter_client.kernelspec import KernelSpecManager

from lora_book import cache as bookcache

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = bookcache.chapter_paths(ROOT)


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_jupytext_round_trip_is_byte_identical(path):
    text = path.read_text()
    assert jupytext.writes(jupytext.reads(text, fmt="md:myst"), fmt="md:myst") == text, (
        f"{path.name} is not in the form jupytext writes: open-save in JupyterLab would rewrite it; "
        "run `jupytext --to md:myst` on it and commit the result"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(url, method="GET", body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read() or b"{}")


@pytest.mark.book
def test_a_jupyterlab_save_through_the_contents_api_changes_nothing(tmp_path):
    """What JupyterLab does: open a chapter as a notebook (jupytext's contents manager),
    run it (outputs appear in the code cells), save it back through the contents API."""
    folder = tmp_path / "book"
    shutil.copytree(ROOT / "book", folder)
    port, token = _free_port(), "test-token"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter",
            "server",
            f"--ServerApp.port={port}",
            "--ServerApp.ip=127.0.0.1",
            f"--IdentityProvider.token={token}",
            "--ServerApp.open_browser=False",
            f"--ServerApp.root_dir={folder}",
            "--allow-root",  # CI runs as root
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "JUPYTER_PLATFORM_DIRS": "1"},
    )
    base = f"http://127.0.0.1:{port}/api/contents"
    spec = KernelSpecManager().get_kernel_spec("python3")
    kernelspec = {"display_name": spec.display_name, "language": spec.language, "name": "python3"}
    try:
        for _ in range(120):
            try:
                _request(f"{base}?token={token}")
                break
            except OSError:
                time.sleep(0.5)
        for path in CHAPTERS:
            name = path.name
            original = (folder / name).read_bytes()
            model = _request(f"{base}/{name}?type=notebook&content=1&token={token}")
            assert model["type"] == "notebook" and model["content"]["cells"], name
            # JupyterLab records the spec of the kernel it ran the notebook with
            model["content"]["metadata"]["kernelspec"] = kernelspec
            for k, cell in enumerate(model["content"]["cells"]):
                if cell["cell_type"] == "code":  # as if the reader ran every cell
                    cell["execution_count"] = k + 1
                    cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "ran\n"}]
                elif "{eval}" in "".join(cell["source"]):
                    # jupyterlab-myst keeps what a markdown cell's {eval} returned
                    result = {"status": "ok", "data": {"text/plain": "'0.5'"}, "metadata": {}}
                    cell["metadata"]["user_expressions"] = [{"expression": 'glued("x")', "result": result}]
            _request(
                f"{base}/{name}?token={token}",
                method="PUT",
                body={"type": "notebook", "format": "json", "content": model["content"]},
            )
            assert (folder / name).read_bytes() == original, f"saving {name} in JupyterLab rewrote it"
    finally:
        server.terminate()
        server.wait(timeout=30)


#: the longest code cell a chapter may have: logic lives in lib/, a cell shows a call
MAX_CELL_LINES = 15


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapters_read_as_narrative_around_short_cells(path):
    """No code cell over 15 lines, and every glued value goes through the report module
    (one call per result: report.glue_all, report.glue_figure), never myst-nb's glue."""
    import re

    cells = [c for c in jupytext.read(path).cells if c.cell_type == "code"]
    long = [(k, len(c.source.splitlines())) for k, c in enumerate(cells) if len(c.source.splitlines()) > MAX_CELL_LINES]
    assert not long, f"{path.name}: code cells (index, lines) over {MAX_CELL_LINES} lines: {long}"
    raw = [k for k, c in enumerate(cells) if re.search(r"(?<![\w.])glue\(|from myst_nb import glue", c.source)]
    assert not raw, f"{path.name}: code cells {raw} glue directly; use report.glue_all / report.glue_figure"
