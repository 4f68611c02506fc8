"""Input texts for the real models, all available offline and reproducible by seed.

- :func:`wikipedia_paragraphs`: paragraphs of real English Wikipedia articles (the
  shortened dump in the gensim wheel's test data, fetched by ``make setup``; CC BY-SA
  4.0), stripped of wiki markup by :func:`strip_wiki_markup`;
- :func:`dummy_text`: grammatical-looking nonsense sentences from the
  ``essential-generators`` package (Markov text over encyclopaedic sentences), the
  offline counterpart of the dummy-text generator the authors used;
- :func:`random_words`: English words drawn at random from the vocabulary of the
  Wikipedia sample.

The paper's clustering experiment (App. G.5) compared dummy text with one Wikipedia
article; Chapter 8 uses several texts of each kind to show the spread between texts.
"""

from __future__ import annotations

import bz2
import html
import random
import re
from functools import lru_cache

from .assets import asset_dir

__all__ = ["dummy_text", "random_words", "strip_wiki_markup", "wikipedia_articles", "wikipedia_paragraphs"]

WIKIPEDIA_FILE = "texts/enwiki-shortened.xml.bz2"


def _drop_nested(text: str, pattern: str) -> str:
    """``text`` without the innermost spans matching ``pattern``, repeated until none
    is left (templates and tables nest)."""
    while True:
        text, count = re.subn(pattern, "", text, flags=re.S)
        if count == 0:
            return text


def strip_wiki_markup(text: str) -> str:
    """Plain prose from MediaWiki markup: templates, tables, references, comments, files
    and categories are dropped; links keep their shown text; bold, italics and headings
    lose their marks."""
    text = html.unescape(text)
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    text = re.sub(r"<ref[^>/]*/>", "", text)
    text = re.sub(r"<ref[^>]*>.*?</ref>", "", text, flags=re.S)
    text = _drop_nested(text, r"\{\{(?:(?!\{\{|\}\}).)*\}\}")
    text = _drop_nested(text, r"\{\|(?:(?!\{\||\|\}).)*\|\}")
    text = re.sub(r"\[\[(?:File|Image|Category|[a-z]{2,3}):[^\[\]]*(?:\[\[[^\]]*\]\][^\[\]]*)*\]\]", "", text)
    text = re.sub(r"\[\[(?:[^|\]]*\|)?([^\]]*)\]\]", r"\1", text)
    text = re.sub(r"\[https?://\S+ ([^\]]*)\]", r"\1", text)
    text = re.sub(r"\[https?://\S+\]", "", text)
    text = re.sub(r"'{2,}", "", text)
    text = re.sub(r"<[^>]+>", "", text)
    text = re.sub(r"^=+\s*(.*?)\s*=+\s*$", r"\1", text, flags=re.M)
    return text


@lru_cache(maxsize=1)
def wikipedia_articles() -> dict:
    """Title -> plain text of every article of the offline dump (redirects left out)."""
    path = asset_dir() / WIKIPEDIA_FILE
    if not path.exists():
        raise FileNotFoundError(f"no Wikipedia sample at {path}: run `make setup` (or `python -m lora_book.models`)")
    raw = bz2.open(path, "rt", encoding="utf-8").read()
    articles = {}
    for page in re.findall(r"<page>(.*?)</page>", raw, flags=re.S):
        title = re.search(r"<title>(.*?)</title>", page).group(1)
        body = re.search(r"<text[^>]*>(.*?)</text>", page, flags=re.S)
        if body is None or body.group(1).lstrip().upper().startswith("#REDIRECT"):
            continue
        articles[html.unescape(title)] = strip_wiki_markup(body.group(1))
    return articles


def wikipedia_paragraphs(count: int, *, min_chars: int = 600, seed: int = 0) -> list[tuple[str, str]]:
    """``count`` (title, paragraph) pairs, each paragraph of at least ``min_chars``
    characters of prose and from a different article, chosen at random with ``seed``."""
    candidates = []
    for title, text in sorted(wikipedia_articles().items()):
        for paragraph in text.split("\n\n"):
            paragraph = " ".join(paragraph.split())
            # prose only: no list items, no leftover markup
            if len(paragraph) >= min_chars and not re.search(r"^[*#:;|!]|[\[\]{}|]", paragraph):
                candidates.append((title, paragraph))
                break
    if count > len(candidates):
        raise ValueError(f"count must be at most {len(candidates)} (articles with a long paragraph), got {count}")
    return random.Random(seed).sample(candidates, count)


@lru_cache(maxsize=1)
def _generator():
    # building one takes seconds (it reads its word lists); its sentences depend only
    # on Python's random state, so one is shared (a test checks it against fresh ones)
    from essential_generators import DocumentGenerator

    return DocumentGenerator()


def dummy_text(n_sentences: int, *, seed: int = 0) -> str:
    """``n_sentences`` generated sentences, reproducible by ``seed`` (the package draws
    from Python's global random state, which is restored afterwards)."""
    generator, state = _generator(), random.getstate()
    try:
        random.seed(seed)
        return " ".join(generator.sentence() for _ in range(n_sentences))
    finally:
        random.setstate(state)


def random_words(n_words: int, *, seed: int = 0) -> str:
    """``n_words`` English words drawn uniformly, with ``seed``, from the vocabulary of
    the Wikipedia sample (lower-case alphabetic words of 3 to 12 letters): real words,
    no syntax."""
    vocabulary = _vocabulary()
    return " ".join(random.Random(seed).choices(vocabulary, k=n_words))


@lru_cache(maxsize=1)
def _vocabulary() -> list[str]:
    words = set()
    for text in wikipedia_articles().values():
        words.update(re.findall(r"\b[a-z]{3,12}\b", text))
    return sorted(words)
