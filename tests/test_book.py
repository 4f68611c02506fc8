"""The committed execution cache is current for every chapter."""

from pathlib import Path

import pytest

from lora_book import cache as bookcache
from lora_book import fingerprint

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.book


def test_every_chapter_carries_the_current_lib_fingerprint():
    chapters = bookcache.chapter_paths(ROOT)
    assert chapters, "no notebook chapters found in _toc.yml"
    assert set(fingerprint.chapters_with_fingerprint(ROOT / "book")) >= set(chapters)
    assert fingerprint.stale_chapters(ROOT / "book") == [], "run `make book` and commit the cache"


def test_committed_cache_holds_current_outputs_of_every_chapter():
    status = bookcache.status(ROOT)
    missing = [str(p.relative_to(ROOT)) for p, pk in status.items() if pk is None]
    assert not missing, (
        f"no cached outputs for the current code of {missing}: run `make book` and commit execution_cache/"
    )


def test_committed_cache_holds_no_stale_records():
    # a build keeps committed records even when stale (so that no reader loses one);
    # developers run `make cache-prune` before committing, and this checks they did
    from jupyter_cache import get_cache

    used = {pk for pk in bookcache.status(ROOT).values() if pk is not None}
    records = {r.pk for r in get_cache(bookcache.cache_dir(ROOT)).list_cache_records()}
    assert records == used, f"stale records {sorted(records - used)}: run `make cache-prune` and commit"


# The build itself (-n -W, from the committed cache, served in Chromium) is tested in
# test_site.py; that every chapter executes from scratch, in test_chapters_in_jupyter.py.


def test_committed_results_hold_only_what_the_chapters_show():
    """Every stored result in results/ is shown by a chapter's current cached outputs
    (`make cache-prune` removes the others), and each is fresh: its code unchanged."""
    from lora_clusters import store

    used = set()
    for path in bookcache.chapter_paths(ROOT):
        info = bookcache.chapter_status(path, ROOT)
        used |= {(r["experiment"], r["file"]) for r in info["results"]}
        assert all(not r["changed"] for r in info["results"]), (path.name, info["results"])
    stored = {(r.experiment, r.path.name) for r in store.records(folder=ROOT / "results")}
    assert stored == used, f"results no chapter shows: {sorted(stored - used)}; run `make cache-prune`"
