"""The packaging tells the truth: pyproject.toml declares what the code imports,
requirements.txt (``make lock``) pins it and nothing else, and environment.yml names the
same pins.  Reads files and installed metadata only; builds nothing."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")


def _pins(lines) -> dict[str, str]:
    pins = {}
    for line in lines:
        match = PIN.match(line.split("#", 1)[0].strip())
        if match:
            pins[canonicalize_name(match[1])] = match[2]
    return pins


def _lock() -> dict[str, str]:
    return _pins((ROOT / "requirements.txt").read_text().splitlines())


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _direct() -> list[Requirement]:
    project = _project()
    extras = project.get("optional-dependencies", {})
    return [Requirement(r) for r in project["dependencies"] + [r for deps in extras.values() for r in deps]]


def test_the_lock_says_how_to_regenerate_it_and_pins_torch_plainly():
    text = (ROOT / "requirements.txt").read_text()
    header = text.split("\n\n", 1)[0]
    assert "make lock" in header and "pip-compile" in header
    assert "lock:" in (ROOT / "Makefile").read_text()
    lock = _lock()
    # the plain version: pip finds the CPU build through its configuration (find-links)
    assert lock["torch"] == "2.13.0"
    # every line that names a package pins it exactly (no ranges, no local paths)
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        assert not line or PIN.match(line), line


def test_environment_yml_names_the_locks_pins_and_python():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    lock = _lock()
    # pins written out in environment.yml (conda or pip) are the lock's
    named = _pins(pip_section) | {
        canonicalize_name(d.split("=")[0]): d.split("=")[-1] for d in conda if re.match(r"^[\w.-]+=[^=]", d)
    }
    named.pop("python", None)
    for name, version in named.items():
        assert lock.get(name) == version, f"environment.yml pins {name}=={version}, requirements.txt {lock.get(name)}"
    # ...or it installs the lock itself and the project without dependencies
    assert "-r requirements.txt" in pip_section or set(lock) <= set(named)
    # the same Python as pyproject.toml and the lock's header
    python = next(d for d in conda if d.startswith("python="))
    version = python.split("=", 1)[1]
    assert Requirement(f"python{_project()['requires-python']}").specifier.contains(version + ".0")
    assert f"with Python {version}" in (ROOT / "requirements.txt").read_text()


def test_every_direct_dependency_is_in_the_lock_within_its_range():
    lock = _lock()
    for requirement in _direct():
        name = canonicalize_name(requirement.name)
        if name == canonicalize_name(_project()["name"]):
            continue
        assert name in lock, f"{requirement} (pyproject.toml) is not in requirements.txt: run make lock"
        version = lock[name]
        assert requirement.specifier.contains(version, prereleases=True), f"{name}=={version} breaks {requirement}"


def _requires(name: str, extras: frozenset[str]) -> set[tuple[str, frozenset[str]]]:
    """What the installed distribution ``name`` requires, with the extras asked of it."""
    try:
        distribution = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"{name} is pinned in requirements.txt but not installed here: cannot compute the closure")
    needed = set()
    for text in distribution.requires or []:
        requirement = Requirement(text)
        marker = requirement.marker
        if marker is None or any(marker.evaluate({"extra": extra}) for extra in extras | {""}):
            needed.add((canonicalize_name(requirement.name), frozenset(requirement.extras)))
    return needed


def test_every_pinned_package_is_needed_by_a_direct_dependency():
    lock = _lock()
    # the closure of the direct dependencies over the metadata of the installed packages
    # (the running environment, as make setup installed it from the lock)
    own = canonicalize_name(_project()["name"])
    direct = [r for r in _direct() if r.marker is None or r.marker.evaluate()]
    todo = [(canonicalize_name(r.name), frozenset(r.extras)) for r in direct]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        item = todo.pop()
        if item in seen or item[0] == own:
            continue
        seen.add(item)
        todo.extend(req for req in _requires(*item) if req[0] in lock)
    unused = sorted(set(lock) - {name for name, _ in seen})
    assert not unused, f"pinned in requirements.txt but used by nothing: {unused}"


def test_pyproject_declares_what_the_science_package_imports():
    """The third-party modules lora_clusters imports (top level or in functions) are its
    dependencies or those of its extras ``chapters`` and ``nets``."""
    project = _project()
    declared = {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}
    for extra in ("chapters", "nets"):
        declared |= {canonicalize_name(Requirement(r).name) for r in project["optional-dependencies"][extra]}
    module_to_package = {"ot": "pot", "IPython": "ipython", "yaml": "pyyaml", "PIL": "pillow"}
    imported = set()
    for path in (ROOT / "lib" / "lora_clusters").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split(".")[0])
    stdlib = sys.stdlib_module_names
    third_party = {m for m in imported if m not in stdlib and m not in {"lora_clusters", "__future__"}}
    packages = {canonicalize_name(module_to_package.get(m, m)) for m in third_party}
    assert packages <= declared, f"imported but not declared: {sorted(packages - declared)}"
    # and lora_clusters never imports the tooling
    assert "lora_book" not in imported
