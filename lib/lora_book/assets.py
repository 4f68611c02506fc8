"""Vendored scripts: MathJax 3, RequireJS, the Jupyter-widgets HTML manager and reveal.js.

They are fetched once from the npm registry (pinned versions, checked against the
registry's SHA-512 integrity strings), unpacked under
``<venv>/share/lora-clusters/static/vendor`` and copied into ``_static/vendor`` of
every build.  ``_config.yml`` points ``mathjax_path`` and ``nb_ipywidgets_js`` at
these copies, and the chapters' lecture slides (:mod:`lora_book.slides`) load reveal.js
and MathJax from them, so a page never asks a CDN for anything: the site works opened
from disk or from any static host without internet.

``python -m lora_book.assets`` fetches them (``make setup`` runs it).
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import shutil
import sys
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ASSET_ROOT = Path(sys.prefix) / "share" / "lora-clusters"
STATIC_DIR = ASSET_ROOT / "static"


@dataclass(frozen=True)
class Asset:
    """One npm package tarball and the part of it the site serves."""

    name: str
    version: str
    integrity: str  # npm's "dist.integrity": sha512-<base64>
    member: str  # file or folder inside the tarball
    target: str  # path under _static/
    exclude: tuple = ()  # regexes of member paths not to copy (source maps, unused bundles)

    @property
    def url(self) -> str:
        base = self.name.rsplit("/", 1)[-1]
        return f"https://registry.npmjs.org/{self.name}/-/{base}-{self.version}.tgz"


ASSETS = (
    Asset(
        "mathjax",
        "3.2.2",
        "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw==",
        "package/es5",
        "vendor/mathjax",
        # the page loads the combined tex-mml-chtml.js, which lazily loads from the
        # folders (a11y, sre, ui, input and output extensions, fonts); the other
        # combined bundles (13 MB) are never requested, and latest.js would fetch
        # MathJax from a CDN
        exclude=(r"^package/es5/(tex-(chtml|svg|mml-svg)|mml-(chtml|svg)|node-main|latest)[^/]*\.js$",),
    ),
    Asset(
        "requirejs",
        "2.3.8",
        "sha512-7/cTSLOdYkNBNJcDMWf+luFvMriVm7eYxp4BcFCsAX0wF421Vyce5SXP17c+Jd5otXKGNehIonFlyQXSowL6Mw==",
        "package/require.js",
        "vendor/requirejs/require.js",
    ),
    Asset(
        "@jupyter-widgets/html-manager",
        "1.0.15",
        "sha512-5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzRhG9PTeQsRjF3FUTopvFi//SABeNz1yp47bCrJ3CQA==",
        "package/dist",
        "vendor/html-manager",
        exclude=(r"\.map$", r"/embed\.js", r"/libembed-amd\.js$"),
    ),
    Asset(
        "reveal.js",
        "6.0.2",
        "sha512-JYIg5D9aoxoaLeb84O+OvAwsKWdIavVgEDScxtYEXFCT6t6TQrhNtSgogcjdCpdLsWglhJn3zyE3fUOwiH5KEg==",
        "package/dist",
        "vendor/reveal.js",
        # the decks load the UMD build (a classic script works from file://, an ES module
        # does not), its core and reset styles and the white theme (fonts inlined); not
        # the ES module, the typings, the plugins or the other themes (some of which
        # import fonts from a CDN)
        exclude=(
            r"\.mjs$",
            r"\.d\.ts$",
            r"\.map$",
            r"^package/dist/(utils|plugin)/",
            r"^package/dist/theme/(?!white\.css$)",
        ),
    ),
)


def _stamp(asset: Asset) -> Path:
    # what is unpacked depends on the exclusions too: a change of them unpacks again
    selection = hashlib.sha256(repr((asset.member, asset.target, asset.exclude)).encode()).hexdigest()[:10]
    return STATIC_DIR / ".stamps" / f"{asset.name.replace('/', '__')}-{asset.version}-{selection}"


def _check_integrity(data: bytes, asset: Asset) -> None:
    algorithm, expected = asset.integrity.split("-", 1)
    actual = base64.b64encode(hashlib.new(algorithm, data).digest()).decode()
    if actual != expected:
        raise RuntimeError(f"{asset.url}: {algorithm} integrity mismatch (got {actual}, expected {expected})")


def _unpack(data: bytes, asset: Asset) -> None:
    target = STATIC_DIR / asset.target
    if target.exists():
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = [
            m
            for m in tar.getmembers()
            if m.isfile()
            and (m.name == asset.member or m.name.startswith(asset.member + "/"))
            and not any(re.search(pattern, m.name) for pattern in asset.exclude)
        ]
        if not members:
            raise RuntimeError(f"{asset.url} holds no {asset.member}")
        for member in members:
            relative = Path(member.name).relative_to(asset.member) if member.name != asset.member else Path()
            destination = target / relative if relative.parts else target
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(tar.extractfile(member).read())


def ensure_assets(verbose: bool = True) -> Path:
    """Download and unpack every :data:`ASSETS` entry that is not there yet; return
    the folder to add to ``html_static_path``."""
    for asset in ASSETS:
        stamp = _stamp(asset)
        if stamp.exists():
            continue
        if verbose:
            print(f"[lora_book.assets] fetching {asset.name}@{asset.version} from the npm registry", file=sys.stderr)
        try:
            with urllib.request.urlopen(asset.url, timeout=120) as response:
                data = response.read()
        except OSError as err:
            raise RuntimeError(
                f"could not download {asset.url} ({err}); the site vendors MathJax and the widget "
                "manager from the npm registry at set-up time, so it must be reachable once"
            ) from err
        _check_integrity(data, asset)
        _unpack(data, asset)
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(asset.url + "\n")
    return STATIC_DIR


if __name__ == "__main__":
    print(ensure_assets())
