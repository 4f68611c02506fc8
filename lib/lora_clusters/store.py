r"""Stored results: expensive computations run once, kept as data, reused until their code changes.

A training run, the spectra of a model or a fine-tuning track takes minutes to hours
(the paper-scale ones need a GPU); drawing it takes a second.  The chapters therefore
never hold such a result only in the execution cache: they ask :func:`load_or_compute`,
which keeps every result as two files under ``results/<experiment>/`` (committed with
the book),

- ``<scale>-<name>-<key>.json``: what was computed (experiment, name, scale, the whole
  configuration), by which code (the content hash of every module of ``lora_clusters``
  that the computing module imports, transitively: :mod:`lora_clusters.code_hash`),
  where and when (device, versions, wall time), and the structure of the result;
- ``<scale>-<name>-<key>.npz``: its arrays,

where ``key`` hashes the configuration and the scale.  A stored result is *fresh* when
its recorded module hashes equal today's, *stale* otherwise.  :func:`load_or_compute`
returns a fresh result as it was stored; a stale or missing one is computed again and
stored, with one exception: **a paper-scale (``gpu``) result is never recomputed
unless the paper scale was asked for explicitly** (``LORA_BOOK_SCALE=gpu``, as ``make
gpu`` does), so a laptop keeps it and the page says that it comes from an older version
of the code and how to refresh it.  Likewise, with no scale asked for, an experiment
with a stored paper-scale result shows that one (:func:`scale_for`): a laptop never
replaces a GPU result by a CPU one.

Editing a plot or a sentence therefore re-renders a chapter from stored results in
seconds; editing a trainer invalidates exactly the results it computed.

Where: ``$LORA_BOOK_RESULTS`` when set (the tests use a scratch folder), else the
``results/`` folder of the book's repository, else (an installed wheel)
``~/.cache/lora-clusters/results``.

A result is any tree of dataclasses, plain objects of :mod:`lora_clusters`, dicts,
lists, tuples, numbers, strings, numpy arrays and torch tensors; it comes back with the
same types (arrays in the stored dtype).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import io
import json
import os
import time
import zipfile
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from . import code_hash, scale
from ._paths import repository_root

__all__ = [
    "MIME",
    "RESULTS_ENV",
    "Record",
    "config_key",
    "load_or_compute",
    "records",
    "results_dir",
    "scale_for",
]

RESULTS_ENV = "LORA_BOOK_RESULTS"
#: MIME type of the (non-rendered) output that says which stored result a cell used
MIME = "application/vnd.lora-clusters.result+json"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed: the same arrays give the same bytes


def results_dir() -> Path:
    """The folder of stored results (see the module docstring)."""
    configured = os.environ.get(RESULTS_ENV, "").strip()
    if configured:
        return Path(configured).expanduser()
    root = repository_root()
    if root is not None:
        return root / "results"
    return Path.home() / ".cache" / "lora-clusters" / "results"


# --------------------------------------------------------------------------------------
# keys
# --------------------------------------------------------------------------------------
def _plain(value):
    """A configuration as JSON-able data (dataclasses as dicts, tuples as lists)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"config must hold dataclasses, dicts, lists, numbers and strings, got {type(value).__name__}")


def config_key(config, scale_name: str, name: str = "") -> str:
    """16 hex digits identifying ``(name, scale, configuration)``."""
    text = json.dumps({"name": name, "scale": scale_name, "config": _plain(config)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------------------
# records
# --------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Record:
    """What a stored result's ``.json`` says about it."""

    path: Path
    experiment: str
    name: str
    scale: str
    key: str
    config: dict
    computed_by: list
    code: dict
    created: str
    seconds: float
    device: str

    @classmethod
    def read(cls, path: Path) -> Record:
        meta = json.loads(Path(path).read_text(encoding="utf-8"))
        fields = {f.name for f in dataclasses.fields(cls)} - {"path"}
        return cls(path=Path(path), **{k: meta[k] for k in fields})

    def changed_modules(self, package_dir: Path | None = None) -> list[str]:
        """The modules whose content differs from when this result was computed, among
        those it used then and those its computing modules use now (a module that no
        longer exists counts as changed); empty when fresh."""
        return _changed(self.code, _current_hashes(self.computed_by, package_dir))

    def summary(self) -> dict:
        """The JSON-able facts a chapter's output carries about this result."""
        return {
            "experiment": self.experiment,
            "name": self.name,
            "scale": self.scale,
            "key": self.key,
            "file": self.path.name,
            "computed_by": self.computed_by,
            "code": self.code,
            "created": self.created,
            "seconds": self.seconds,
            "device": self.device,
        }


#: infrastructure, not computation: a module that computes a result may import the store
#: (to keep its own results), but the store's code, and what only it imports (the scale
#: table, provenance), never changes what was computed
NOT_COMPUTING = ("lora_clusters.store",)


def _current_hashes(computed_by: Iterable[str], package_dir: Path | None = None) -> dict[str, str]:
    """Today's hashes of the modules ``computed_by`` use (themselves included), the store
    left out (:data:`NOT_COMPUTING`)."""
    modules = code_hash.package_modules(package_dir)
    present = [m for m in computed_by if m in modules]
    closure = code_hash.module_closure(present, package_dir, stop=NOT_COMPUTING)
    return code_hash.module_hashes(closure, package_dir)


def _changed(then: dict[str, str], now: dict[str, str]) -> list[str]:
    """The modules of today's closure whose hash differs from (or is missing in) the
    record.  A module the computing code no longer imports needs no check of its own:
    dropping an import edits a module of today's closure."""
    return [m for m in sorted(now) if then.get(m) != now[m]]


def _stem(name: str, scale_name: str, key: str) -> str:
    return f"{scale_name}-{name}-{key}" if name else f"{scale_name}-{key}"


def records(experiment: str | None = None, folder: Path | None = None) -> list[Record]:
    """Every stored result (of ``experiment``), in path order."""
    folder = results_dir() if folder is None else Path(folder)
    pattern = f"{experiment}/*.json" if experiment else "*/*.json"
    return [Record.read(p) for p in sorted(folder.glob(pattern))]


def scale_for(experiment: str) -> str:
    """The scale an experiment runs at: the one asked for (``LORA_BOOK_SCALE``), else
    the paper's when a paper-scale result of it is stored, else the default."""
    asked = scale.requested()
    if asked is not None:
        return asked
    if any(r.scale == scale.PAPER for r in records(experiment)):
        return scale.PAPER
    return scale.DEFAULT


# --------------------------------------------------------------------------------------
# encoding a result as JSON + arrays
# --------------------------------------------------------------------------------------
class _Encoder:
    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}

    def _array(self, array: np.ndarray) -> str:
        name = f"a{len(self.arrays)}"
        self.arrays[name] = np.ascontiguousarray(array)
        return name

    def __call__(self, value):
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        if isinstance(value, complex):
            return {"__complex__": [value.real, value.imag]}
        if isinstance(value, np.generic):
            return {"__scalar__": self._array(np.asarray(value))}
        if isinstance(value, np.ndarray):
            if value.dtype == object:
                raise TypeError("object arrays cannot be stored")
            return {"__array__": self._array(value)}
        if type(value).__module__ == "torch" and type(value).__name__ == "Tensor":
            return {"__tensor__": self._array(value.detach().cpu().numpy()), "dtype": str(value.dtype)}
        if isinstance(value, tuple):
            return {"__tuple__": [self(v) for v in value]}
        if isinstance(value, list):
            return [self(v) for v in value]
        if isinstance(value, dict):
            if all(isinstance(k, str) for k in value):
                return {"__dict__": {k: self(v) for k, v in value.items()}}
            return {"__pairs__": [[self(k), self(v)] for k, v in value.items()]}
        if isinstance(value, Path):
            return {"__path__": str(value)}
        cls = type(value)
        if cls.__module__.split(".")[0] == code_hash.PACKAGE and hasattr(value, "__dict__"):
            return {"__object__": f"{cls.__module__}:{cls.__qualname__}", "state": self(dict(vars(value)))}
        raise TypeError(f"cannot store a {cls.__module__}.{cls.__qualname__}")


def _decode(tree, arrays):
    if isinstance(tree, list):
        return [_decode(v, arrays) for v in tree]
    if not isinstance(tree, dict):
        return tree
    if "__dict__" in tree:
        return {k: _decode(v, arrays) for k, v in tree["__dict__"].items()}
    if "__pairs__" in tree:
        return {_decode(k, arrays): _decode(v, arrays) for k, v in tree["__pairs__"]}
    if "__tuple__" in tree:
        return tuple(_decode(v, arrays) for v in tree["__tuple__"])
    if "__array__" in tree:
        return arrays[tree["__array__"]]
    if "__scalar__" in tree:
        return arrays[tree["__scalar__"]][()]
    if "__complex__" in tree:
        return complex(*tree["__complex__"])
    if "__path__" in tree:
        return Path(tree["__path__"])
    if "__tensor__" in tree:
        import torch

        return torch.from_numpy(np.array(arrays[tree["__tensor__"]]))
    if "__object__" in tree:
        module, qualname = tree["__object__"].split(":")
        if module.split(".")[0] != code_hash.PACKAGE:
            raise ValueError(f"a stored result may only hold {code_hash.PACKAGE} objects, got {module}")
        cls = importlib.import_module(module)
        for part in qualname.split("."):
            cls = getattr(cls, part)
        obj = cls.__new__(cls)
        obj.__dict__.update(_decode(tree["state"], arrays))
        return obj
    raise ValueError(f"unknown stored node {sorted(tree)}")


def _write_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """An ``.npz`` (readable by ``np.load``) whose bytes depend on the arrays only."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, array, allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue())


def _read(record: Record):
    meta = json.loads(record.path.read_text(encoding="utf-8"))
    with np.load(record.path.with_suffix(".npz"), allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    return _decode(meta["result"], arrays)


# --------------------------------------------------------------------------------------
# the one entry point
# --------------------------------------------------------------------------------------
def _device() -> str:
    from .provenance import device

    return device()


def _save(folder: Path, stem: str, meta: dict, value) -> Record:
    encode = _Encoder()
    meta = {**meta, "result": encode(value)}
    folder.mkdir(parents=True, exist_ok=True)
    _write_arrays(folder / f"{stem}.npz", encode.arrays)
    path = folder / f"{stem}.json"
    path.write_text(json.dumps(meta, indent=1, sort_keys=True, allow_nan=True) + "\n", encoding="utf-8")
    return Record.read(path)


def _announce(record: Record, status: str, changed: Iterable[str] = ()) -> None:
    """In a kernel, say which stored result a cell used (and, if stale, why and how to
    refresh it); the output also carries the record for ``make cache-status``."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    if get_ipython() is None:
        return
    from IPython.display import display

    try:
        shown = record.path.relative_to(results_dir().parent)
    except ValueError:
        shown = record.path.name
    minutes = record.seconds / 60
    where = f"scale **{record.scale}**, {record.device}, {minutes:.1f} min, {record.created}"
    if status == "stale":
        text = (
            f"**Stored result from an older version of the code.** `{record.experiment}/{record.name}` "
            f"({where}) was computed before {', '.join(f'`{m}`' for m in changed)} changed; it is shown as "
            f"stored. `make gpu` recomputes it with the current code."
        )
    else:
        verb = "computed now and stored" if status == "computed" else "stored result, current code"
        text = f"`{record.experiment}/{record.name}`: {verb} ({where}; `{shown}`)."
    summary = {**record.summary(), "status": status, "changed": list(changed)}
    display({MIME: summary, "text/markdown": text, "text/plain": text.replace("**", "")}, raw=True)


def load_or_compute(
    experiment: str,
    config,
    compute: Callable[[], object],
    *,
    code: Iterable[str],
    scale_name: str,
    name: str = "",
):
    """The result of ``compute()`` for ``config`` at ``scale_name``, from the store when a
    fresh one is there (see the module docstring for when a stale one is kept).

    ``experiment`` is the folder under ``results/``, ``name`` tells apart the results of
    one experiment (e.g. ``"study"``, ``"lr-sweep"``), ``code`` names the modules of
    ``lora_clusters`` whose code computes the result (their imports are followed)."""
    scale_name = scale.check(scale_name, "scale_name")
    code = sorted(code)
    unknown = sorted(set(code) - set(code_hash.package_modules()))
    if not code or unknown:
        raise ValueError(f"code must name modules of {code_hash.PACKAGE}, got {code} (unknown: {unknown})")
    key = config_key(config, scale_name, name)
    folder = results_dir() / experiment
    stem = _stem(name, scale_name, key)
    current = _current_hashes(code)
    path = folder / f"{stem}.json"
    if path.exists():
        record = Record.read(path)
        changed = _changed(record.code, current)
        if not changed:
            _announce(record, "fresh")
            return _read(record)
        if scale_name == scale.PAPER and scale.requested() != scale.PAPER:
            _announce(record, "stale", changed)
            return _read(record)
    start = time.perf_counter()
    value = compute()
    meta = {
        "experiment": experiment,
        "name": name,
        "scale": scale_name,
        "key": key,
        "config": _plain(config),
        "computed_by": code,
        "code": current,
        "created": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": time.perf_counter() - start,
        "device": _device(),
    }
    record = _save(folder, stem, meta, value)
    _announce(record, "computed")
    return _read(record)
