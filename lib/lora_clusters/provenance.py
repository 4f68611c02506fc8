"""Where a chapter's outputs were computed, recorded inside the chapter itself.

Each chapter's first (hidden) cell calls :func:`record`, which emits an output of
MIME type :data:`MIME` holding the Python version, the versions of the packages
the book uses, the device (GPU model when one is visible, else the CPU) and the
library fingerprint.  The output travels with the executed notebook into the
jupyter-cache, so the site's reproducibility page (``{provenance-table}``, see
:mod:`lora_book.provenance_table`) can say, for every chapter, what produced the numbers
it shows -- including chapters executed on a GPU machine and built elsewhere.
"""

from __future__ import annotations

import os
import platform
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

MIME = "application/vnd.lora-clusters.provenance+json"
PACKAGES = (
    "numpy",
    "scipy",
    "matplotlib",
    "POT",
    "torch",
    "transformers",
    "peft",
    "ipywidgets",
    "myst-nb",
    "jupyter-book",
)


def package_versions(names=PACKAGES) -> dict:
    """Installed version of each package (``"not installed"`` when absent)."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device() -> str:
    """The accelerator the outputs come from: the CUDA device when torch is loaded and
    sees one (or the NVIDIA driver lists one), otherwise the CPU model and core count."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        return f"GPU: {torch.cuda.get_device_name(0)}"
    gpus = sorted(Path("/proc/driver/nvidia/gpus").glob("*/information"))
    for info in gpus:
        for line in info.read_text().splitlines():
            if line.startswith("Model:"):
                return f"GPU: {line.split(':', 1)[1].strip()}"
    return f"CPU: {_cpu_model()} ({os.cpu_count()} cores)"


def environment(lib_fingerprint: str = "") -> dict:
    """Where and with what this process computes: Python, platform, device, package
    versions, the library fingerprint and the hash of every module of the library (so
    that ``make cache-status`` can name the module whose change made a chapter stale),
    and the time.  The scale of a chapter that trains networks is recorded with each of
    its stored results (:mod:`lora_clusters.store`), not here: so the chapters that have
    no scale do not depend on the settings table."""
    from . import code_hash

    return {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "device": device(),
        "packages": package_versions(),
        "lib_fingerprint": lib_fingerprint,
        "modules": code_hash.module_hashes(code_hash.package_modules()),
        "executed_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
    }


def record(lib_fingerprint: str = "") -> dict:
    """Emit the provenance of this execution as a (non-rendered) cell output."""
    from IPython.display import display

    info = environment(lib_fingerprint)
    display({MIME: info, "text/plain": f"outputs computed on {info['device']}"}, raw=True)
    return info


def find_record(nb: dict) -> dict | None:
    """The provenance dict recorded in an executed notebook (as a dict), if any."""
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []) or []:
            data = output.get("data", {})
            if MIME in data:
                return data[MIME]
    return None
