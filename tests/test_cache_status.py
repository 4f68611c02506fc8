"""What goes stale when code changes: chapters by the modules they import, stored results
by the modules that computed them (make cache-status).  On a scratch copy of the
package, against the book's real chapters and its committed results."""

from pathlib import Path

from lora_book import cache, fingerprint
from lora_clusters import code_hash, store

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(code_hash.__file__).resolve().parent
CHAPTERS = cache.chapter_paths(ROOT)


def fingerprints():
    return {p.stem: fingerprint.chapter_fingerprint(p) for p in CHAPTERS}


def edit(path: Path) -> None:
    with path.open("a") as handle:
        handle.write("\n# an edit\n")


def stale_results() -> dict[str, list[str]]:
    return {f"{r.experiment}/{r.name}/{r.scale}": r.changed_modules() for r in store.records(folder=ROOT / "results")}


def test_an_edit_of_the_toy_study_makes_only_chapter_6_and_its_results_stale(package_copy):
    before = fingerprints()
    results = stale_results()
    assert results and not any(results.values()), "the committed results are fresh"
    edit(package_copy / "nets" / "toy_study.py")
    after = fingerprints()
    assert [name for name in before if before[name] != after[name]] == ["ch06_toy_transformer"]
    # the trainer (nets/toy.py) did not change: no stored training run is stale
    assert not any(stale_results().values())
    edit(package_copy / "nets" / "toy.py")
    stale = {name for name, changed in stale_results().items() if changed}
    assert stale and all(name.startswith("toy/") for name in stale), stale


def test_an_edit_of_the_plots_invalidates_no_stored_result(package_copy):
    before = fingerprints()
    for plots in package_copy.glob("plots*"):
        for path in [plots] if plots.is_file() else plots.rglob("*.py"):
            edit(path)
    after = fingerprints()
    assert all(before[name] != after[name] for name in before if name.startswith(("ch06", "ch07", "ch08", "ch09")))
    assert not any(stale_results().values()), "drawing is not computing: no result goes stale"


def test_an_edit_of_a_module_no_chapter_imports_leaves_every_chapter_fresh(package_copy):
    before = fingerprints()
    (package_copy / "unused_helper.py").write_text("X = 1\n")
    assert fingerprints() == before


def test_cache_status_names_the_changed_module(package_copy):
    chapter = ROOT / "book" / "ch06_toy_transformer.md"
    assert cache.chapter_status(chapter, ROOT)["fresh"], cache.chapter_status(chapter, ROOT)
    edit(package_copy / "nets" / "toy.py")
    info = cache.chapter_status(chapter, ROOT)
    assert not info["fresh"] and "nets/toy.py changed" in info["reasons"]
    assert info["results"] and all("lora_clusters.nets.toy" in r["changed"] for r in info["results"])
    lines = cache.status_lines(ROOT)
    assert len(lines) == len(CHAPTERS)
    (line,) = [line for line in lines if line.startswith("ch06")]
    assert "STALE" in line and "nets/toy.py changed" in line and "at scale cpu" in line
    assert all("STALE" not in line for line in lines if line.startswith(("ch01", "ch08", "ch09")))
