"""Stored results (lora_clusters.store) and the code hashes that decide when they are stale."""

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from lora_clusters import code_hash, scale, store

PACKAGE = Path(code_hash.__file__).resolve().parent


@pytest.fixture
def results(tmp_path, monkeypatch):
    folder = tmp_path / "results"
    monkeypatch.setenv(store.RESULTS_ENV, str(folder))
    monkeypatch.delenv(scale.ENV, raising=False)
    return folder


@dataclass(frozen=True)
class Settings:
    n: int = 3
    rate: float = 0.5


def make_result(settings: Settings):
    import torch

    from lora_clusters.spectra import TopEigenpair

    rng = np.random.default_rng(settings.n)
    top = TopEigenpair(eigenvalue=complex(2.0, 0.5), second=1.0, phi=rng.standard_normal(3), phi_dual=np.ones(3))
    return {
        "curves": {2: rng.standard_normal((4, settings.n)), 4: rng.standard_normal((4, settings.n)).astype(np.float32)},
        "weights": torch.arange(6, dtype=torch.float32).reshape(2, 3),
        "mask": torch.tensor([True, False]),
        "shape": (settings.n, "rows"),
        "never": math.inf,
        "top": top,
        "count": np.int64(7),
    }


def test_a_result_comes_back_with_its_types_and_values(results):
    import torch

    calls = []

    def compute():
        calls.append(1)
        return make_result(Settings())

    code = ["lora_clusters.spectra"]
    first = store.load_or_compute("demo", Settings(), compute, code=code, scale_name="cpu", name="run")
    second = store.load_or_compute("demo", Settings(), compute, code=code, scale_name="cpu", name="run")
    assert len(calls) == 1, "a fresh stored result is loaded, not computed again"
    expected = make_result(Settings())
    for got in (first, second):
        assert set(got["curves"]) == {2, 4}
        np.testing.assert_array_equal(got["curves"][2], expected["curves"][2])
        assert got["curves"][4].dtype == np.float32
        assert isinstance(got["weights"], torch.Tensor) and torch.equal(got["weights"], expected["weights"])
        assert got["mask"].dtype == torch.bool
        assert got["shape"] == (3, "rows") and got["never"] == math.inf and got["count"] == 7
        assert type(got["top"]).__name__ == "TopEigenpair" and got["top"].eigenvalue == complex(2.0, 0.5)
        np.testing.assert_array_equal(got["top"].phi, expected["top"].phi)
    # another configuration, another scale, another name: each its own result
    store.load_or_compute("demo", Settings(n=4), compute, code=code, scale_name="cpu", name="run")
    store.load_or_compute("demo", Settings(), compute, code=code, scale_name="smoke", name="run")
    assert len(calls) == 3
    assert len(store.records("demo")) == 3


def test_the_record_says_what_computed_it(results):
    store.load_or_compute("demo", Settings(), lambda: {"x": 1}, code=["lora_clusters.spectra"], scale_name="cpu")
    (record,) = store.records("demo")
    assert record.scale == "cpu" and record.config == {"n": 3, "rate": 0.5}
    # the module and everything it imports from the package, no more
    assert set(record.code) == code_hash.module_closure(["lora_clusters.spectra"])
    assert "lora_clusters.plots" not in record.code and "lora_clusters.spectra" in record.code
    assert record.changed_modules() == []
    meta = json.loads(record.path.read_text())
    assert meta["key"] == store.config_key(Settings(), "cpu")


def test_storing_is_byte_reproducible(results, tmp_path):
    value = make_result(Settings())
    store.load_or_compute("demo", Settings(), lambda: value, code=["lora_clusters.spectra"], scale_name="cpu")
    (record,) = store.records("demo")
    first = record.path.with_suffix(".npz").read_bytes()
    record.path.unlink()
    store.load_or_compute("demo", Settings(), lambda: value, code=["lora_clusters.spectra"], scale_name="cpu")
    assert record.path.with_suffix(".npz").read_bytes() == first


def test_editing_the_computing_code_makes_a_cpu_result_stale_and_recomputed(results, package_copy):
    calls = []

    def compute():
        calls.append(1)
        return {"value": len(calls)}

    code = ["lora_clusters.nets.toy"]
    store.load_or_compute("toy", Settings(), compute, code=code, scale_name="cpu")
    # plots and the scale table are not code the trainer uses: nothing goes stale
    for name in ("plots.py", "scale.py", "widgets.py"):
        with open(package_copy / name, "a") as handle:
            handle.write("\n# an edit\n")
    assert store.load_or_compute("toy", Settings(), compute, code=code, scale_name="cpu") == {"value": 1}
    # the trainer itself: stale, recomputed, stored again
    with open(package_copy / "nets" / "toy.py", "a") as handle:
        handle.write("\n# an edit\n")
    (record,) = store.records("toy")
    assert record.changed_modules() == ["lora_clusters.nets.toy"]
    assert store.load_or_compute("toy", Settings(), compute, code=code, scale_name="cpu") == {"value": 2}
    assert store.records("toy")[0].changed_modules() == []


def test_a_stale_paper_scale_result_is_kept_unless_the_paper_scale_is_asked_for(results, package_copy, monkeypatch):
    calls = []

    def compute():
        calls.append(1)
        return {"value": len(calls)}

    code = ["lora_clusters.nets.toy"]
    monkeypatch.setenv(scale.ENV, "gpu")
    store.load_or_compute("toy", Settings(), compute, code=code, scale_name="gpu")  # make gpu
    monkeypatch.delenv(scale.ENV)
    with open(package_copy / "nets" / "toy.py", "a") as handle:
        handle.write("\n# an edit\n")
    # a laptop build: no scale asked for, so the stored paper-scale result is the one shown
    assert store.scale_for("toy") == "gpu"
    assert store.load_or_compute("toy", Settings(), compute, code=code, scale_name="gpu") == {"value": 1}
    assert len(calls) == 1, "a laptop never recomputes (or replaces) a paper-scale result"
    # an explicit cpu run computes and stores a cpu result beside it
    monkeypatch.setenv(scale.ENV, "cpu")
    assert store.scale_for("toy") == "cpu"
    store.load_or_compute("toy", Settings(), compute, code=code, scale_name="cpu")
    assert sorted(r.scale for r in store.records("toy")) == ["cpu", "gpu"]
    # make gpu (the paper scale asked for) refreshes it
    monkeypatch.setenv(scale.ENV, "gpu")
    assert store.load_or_compute("toy", Settings(), compute, code=code, scale_name="gpu") == {"value": 3}


def test_without_a_paper_scale_result_the_default_scale_runs(results, monkeypatch):
    assert store.scale_for("toy") == scale.DEFAULT
    monkeypatch.setenv(scale.ENV, "smoke")
    assert store.scale_for("toy") == "smoke"


def test_bad_input_is_named(results):
    with pytest.raises(ValueError, match="scale_name must be one of smoke, cpu, gpu"):
        store.load_or_compute("demo", Settings(), dict, code=["lora_clusters.spectra"], scale_name="laptop")
    with pytest.raises(ValueError, match="code must name modules of lora_clusters"):
        store.load_or_compute("demo", Settings(), dict, code=["lora_clusters.nowhere"], scale_name="cpu")
    with pytest.raises(TypeError, match="config must hold"):
        store.config_key(object(), "cpu")
    with pytest.raises(TypeError, match="cannot store"):
        store.load_or_compute("demo", Settings(), lambda: {"f": open}, code=["lora_clusters.spectra"], scale_name="cpu")


def test_imports_are_followed_through_relative_lazy_and_package_imports():
    known = {"lora_clusters", "lora_clusters.a", "lora_clusters.nets", "lora_clusters.nets.b", "lora_clusters.nets.c"}
    source = "from . import c\nfrom ..a import thing\n\ndef later():\n    import lora_clusters.nets.b\n"
    found = code_hash.imported_modules(source, "lora_clusters.nets.b", False, known)
    assert found == {
        "lora_clusters",
        "lora_clusters.a",
        "lora_clusters.nets",
        "lora_clusters.nets.c",
        "lora_clusters.nets.b",
    }
    # a package's own relative import starts from the package
    assert code_hash.imported_modules("from .nets import c", "lora_clusters", True, known) >= {"lora_clusters.nets.c"}
    # the real package: the toy trainer uses neither plots nor the scale table
    toy = code_hash.module_closure(["lora_clusters.nets.toy"])
    assert "lora_clusters.nets.settings" in toy
    assert not {"lora_clusters.plots", "lora_clusters.scale", "lora_clusters.widgets"} & toy


def test_folder_hash_sees_contents_and_names_not_bytecode(tmp_path):
    folder = tmp_path / "pkg"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.py").write_text("x = 1\n")
    (folder / "sub" / "b.css").write_text("p {}\n")
    first = code_hash.folder_hash(folder)
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    assert code_hash.folder_hash(folder) == first
    (folder / "a.py").write_text("x = 1\r\n")  # line ends do not count
    assert code_hash.folder_hash(folder) == first
    (folder / "sub" / "b.css").write_text("p { color: red }\n")
    assert code_hash.folder_hash(folder) != first


def test_a_kernel_is_told_where_a_result_comes_from_and_when_it_is_stale(results, package_copy, monkeypatch):
    """What the page shows above a stored result: its origin, and for a stale paper-scale
    result that it comes from older code and how to refresh it."""
    import IPython
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython, "get_ipython", lambda: object())
    monkeypatch.setattr(IPython.display, "display", lambda data, raw=False: shown.append(data))
    code = ["lora_clusters.nets.toy"]
    monkeypatch.setenv(scale.ENV, "gpu")
    store.load_or_compute("toy", Settings(), lambda: {"v": 1}, code=code, scale_name="gpu", name="study")
    assert "computed now and stored" in shown[-1]["text/markdown"]
    store.load_or_compute("toy", Settings(), lambda: {"v": 2}, code=code, scale_name="gpu", name="study")
    assert "stored result, current code" in shown[-1]["text/markdown"]
    assert shown[-1][store.MIME]["status"] == "fresh" and shown[-1][store.MIME]["scale"] == "gpu"
    monkeypatch.delenv(scale.ENV)
    with open(package_copy / "nets" / "toy.py", "a") as handle:
        handle.write("\n# an edit\n")
    store.load_or_compute("toy", Settings(), lambda: {"v": 3}, code=code, scale_name="gpu", name="study")
    text = shown[-1]["text/markdown"]
    assert "older version of the code" in text and "`lora_clusters.nets.toy`" in text and "make gpu" in text
    assert shown[-1][store.MIME]["status"] == "stale"
    assert shown[-1][store.MIME]["changed"] == ["lora_clusters.nets.toy"]


def test_the_store_and_the_scale_table_never_make_a_result_stale(results, package_copy):
    """A module that keeps its own results imports the store (and so the scale table and
    provenance): neither computes anything, so editing them leaves its results fresh."""
    calls = []

    def compute():
        calls.append(1)
        return {"value": len(calls)}

    code = ["lora_clusters.nets.depth"]  # imports the store for similarity_study
    store.load_or_compute("depth", Settings(), compute, code=code, scale_name="cpu")
    (record,) = store.records("depth")
    assert "lora_clusters.store" not in record.code and "lora_clusters.scale" not in record.code
    for name in ("store.py", "scale.py", "provenance.py"):
        with open(package_copy / name, "a") as handle:
            handle.write("\n# an edit\n")
    assert store.records("depth")[0].changed_modules() == []
    assert store.load_or_compute("depth", Settings(), compute, code=code, scale_name="cpu") == {"value": 1}
    with open(package_copy / "nets" / "texts.py", "a") as handle:  # used by depth: stale
        handle.write("\n# an edit\n")
    assert store.records("depth")[0].changed_modules() == ["lora_clusters.nets.texts"]
