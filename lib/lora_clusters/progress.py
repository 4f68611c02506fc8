"""Progress bars for long computations: shown while a reader runs a chapter, never left
on the website.

Every long loop of the library asks :func:`progress_bar` for its bar.  The bar is
tqdm's automatic one (a widget in JupyterLab, text in a terminal) and disappears when
the loop ends (``leave=False``), so a finished bar never stays in a saved notebook.
When the book is built, ``LORA_BOOK_PROGRESS=off`` (set by the ``lora_book`` Sphinx
extension and by ``lora_book.cache execute``, and inherited by the kernels they start)
turns bars off altogether: a bar widget would leave an empty box on the static page,
and a text bar a line of carriage returns.
"""

from __future__ import annotations

import os

#: the environment variable that turns every bar off when set to "off"
ENV = "LORA_BOOK_PROGRESS"


def bars_enabled() -> bool:
    """False when ``LORA_BOOK_PROGRESS`` is "off" (a book build), else True."""
    return os.environ.get(ENV, "on").strip().lower() != "off"


def progress_bar(total: float, desc: str, unit: str = "it", enabled: bool = True):
    """A tqdm bar over ``total`` units, or None when ``enabled`` is False or bars are
    turned off (see :func:`bars_enabled`).  Callers update it and close it themselves."""
    if not (enabled and bars_enabled()):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, leave=False, mininterval=1.0)
