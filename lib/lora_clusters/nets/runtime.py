"""Where the torch code runs: the number of CPU threads it uses.

Small models are dominated by per-operation overhead, and on a machine whose cores
are busy (a book build, a test run) OpenMP's threads spin against each other: two
threads were measured 28 times slower than one on such a machine, for the smoke-scale
toy model.  The torch code therefore runs inside :func:`threads` with
``LORA_BOOK_TORCH_THREADS`` threads when that is set (the tests, which run two at a
time, set 1), otherwise two (a chapter executing alone: two threads were 1.5 to 2 times
faster than one for the ``cpu`` sizes on an idle 2-core machine), and restores the
setting afterwards.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

__all__ = ["ENV", "device", "thread_count", "threads"]

ENV = "LORA_BOOK_TORCH_THREADS"


def thread_count() -> int:
    """The number of threads from ``LORA_BOOK_TORCH_THREADS``, else min(2, CPU count)."""
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return min(2, os.cpu_count() or 1)
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{ENV} must be an integer >= 1, got {raw!r}")
    return int(raw)


@contextmanager
def threads(count: int | None = None):
    """Run the block with ``count`` torch threads (default :func:`thread_count`)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(thread_count() if count is None else count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def device() -> str:
    """``"cuda"`` when torch sees a GPU, else ``"cpu"``: where the networks are trained."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
