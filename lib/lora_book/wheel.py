"""The library as a wheel, served by the site itself.

A reader who downloads a chapter's notebook needs ``lora_clusters`` to run it.  Every
build makes a wheel of the package from ``lib/`` (in a scratch copy, so the work tree
stays clean) and puts it at the root of the site, next to ``index.html``; the preface
links it.  A reader with any Python 3.11+ then runs::

    pip install "lora_clusters-<version>-py3-none-any.whl[chapters]"   # + [nets] for Chapter 6

and opens the downloaded notebook.  The wheel holds the science package
``lora_clusters`` alone (``lora_clusters.glued`` included, which a downloaded chapter
loads to show its glued numbers), with the reader's extras ``chapters`` and ``nets``;
the build tooling ``lora_book`` and its extras stay in the repository.
"""

from __future__ import annotations

import ast
import functools
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .repository import ROOT

#: the package the wheel holds, and the extras a reader of a chapter may want
PACKAGE = "lora_clusters"
READER_EXTRAS = ("chapters", "nets")


@functools.cache
def version(root: Path = ROOT) -> str:
    """The package version, ``lora_clusters.__version__`` (the one source: pyproject.toml
    reads it too), without importing the package (read once: every page asks)."""
    tree = ast.parse((root / "lib" / PACKAGE / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__version__" for t in node.targets):
            return ast.literal_eval(node.value)
    raise RuntimeError(f"no __version__ in lib/{PACKAGE}/__init__.py")


def wheel_name(root: Path = ROOT) -> str:
    return f"{PACKAGE}-{version(root)}-py3-none-any.whl"


def wheel_pyproject(root: Path = ROOT) -> str:
    """The ``pyproject.toml`` of the wheel: the project's metadata and dependencies, the
    reader's extras only, and a package search that finds ``lora_clusters`` alone."""
    import tomllib

    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    extras = {name: project["optional-dependencies"][name] for name in READER_EXTRAS}
    lines = ["[build-system]", 'requires = ["setuptools>=61"]', 'build-backend = "setuptools.build_meta"', ""]
    lines += ["[project]"]
    lines += [f"{key} = {json.dumps(project[key])}" for key in ("name", "description", "requires-python")]
    lines += [f"version = {json.dumps(version(root))}", f"dependencies = {json.dumps(project['dependencies'])}", ""]
    lines += ["[project.optional-dependencies]"] + [f"{name} = {json.dumps(deps)}" for name, deps in extras.items()]
    lines += ["", "[tool.setuptools.packages.find]", 'where = ["lib"]', f'include = ["{PACKAGE}", "{PACKAGE}.*"]', ""]
    return "\n".join(lines)


def build_wheel(outdir: Path, root: Path = ROOT) -> Path:
    """Build the wheel of ``lora_clusters`` into ``outdir`` and return its path."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        src = Path(scratch) / "src"
        ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
        shutil.copytree(root / "lib" / PACKAGE, src / "lib" / PACKAGE, ignore=ignore)
        (src / "pyproject.toml").write_text(wheel_pyproject(root))
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "--no-build-isolation",
                "--quiet",
                "--wheel-dir",
                str(outdir),
                str(src),
            ],
            check=True,
            capture_output=True,
        )
    path = outdir / wheel_name(root)
    if not path.exists():
        raise RuntimeError(f"building the wheel did not produce {path.name}")
    return path
