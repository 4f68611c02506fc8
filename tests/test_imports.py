"""Importing the library does not import torch: only the modules that train networks
(:mod:`lora_clusters.nets.toy`, :mod:`lora_clusters.nets.toy_study` and
:mod:`lora_clusters.nets.toy_depth`) do, and the rest
of :mod:`lora_clusters.nets` imports it when a model is loaded, not before."""

import pkgutil
import subprocess
import sys
import textwrap

import lora_clusters

#: the modules that import torch at the top, as training code must
TORCH_MODULES = {"lora_clusters.nets.toy", "lora_clusters.nets.toy_study", "lora_clusters.nets.toy_depth"}


def _modules() -> list[str]:
    found = [m.name for m in pkgutil.walk_packages(lora_clusters.__path__, "lora_clusters.")]
    return ["lora_clusters", *sorted(set(found) - TORCH_MODULES)]


def test_the_torch_modules_are_the_listed_ones():
    names = {m.name for m in pkgutil.walk_packages(lora_clusters.__path__, "lora_clusters.")}
    assert TORCH_MODULES <= names


def test_no_module_but_the_training_ones_imports_torch():
    # one fresh interpreter, the modules one after the other: the first culprit is named
    script = textwrap.dedent(f"""\
        import importlib, sys
        for name in {_modules()!r}:
            importlib.import_module(name)
            if "torch" in sys.modules:
                sys.exit("importing " + name + " imported torch")
        """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
