"""The library as a wheel, served by the site itself.

A reader who downloads a chapter's notebook needs ``lora_clusters`` to run it.  Every
build makes a wheel of the package from ``lib/`` (in a scratch copy, so the work tree
stays clean) and puts it at the root of the site, next to ``index.html``; the preface
links it.  A reader with any Python 3.11+ then runs::

    pip install "lora_clusters-<version>-py3-none-any.whl[chapters]"   # + [nets] for Chapter 6

and opens the downloaded notebook.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .repository import ROOT


@functools.cache
def version(root: Path = ROOT) -> str:
    """The package version from ``pyproject.toml`` (read once: every page asks)."""
    import tomllib

    return tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"]


def wheel_name(root: Path = ROOT) -> str:
    return f"lora_clusters-{version(root)}-py3-none-any.whl"


def build_wheel(outdir: Path, root: Path = ROOT) -> Path:
    """Build the wheel of ``lora-clusters`` into ``outdir`` and return its path."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        src = Path(scratch) / "src"
        shutil.copytree(root / "lib", src / "lib", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        shutil.copy2(root / "pyproject.toml", src / "pyproject.toml")
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
