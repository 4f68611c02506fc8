r"""``glued(name, format_spec)`` in the kernel: the numbers a chapter's prose quotes.

The prose writes ``{eval}`glued("name", ".2f")```; JupyterLab with jupyterlab-myst
evaluates it in the kernel when the markdown cell runs.  This IPython extension
(``%load_ext lora_clusters.glued``; a downloaded chapter's first code cell, and every
kernel of the book's environment) records the text of every value a cell glues with
myst-nb's ``glue`` and defines ``glued`` in the notebook's namespace, formatted as the
site's ``{glue:text}`` formats it.  It computes nothing and changes no output (the
chapters' fingerprint leaves it out); the site's half is :mod:`lora_book.glued`.
"""

from __future__ import annotations

_values: dict[str, str] = {}


def format_glued(text_plain: str, format_spec: str = "") -> str:
    """The text ``{glue:text}`key:format_spec``` shows for a glued ``text/plain``."""
    from myst_nb.core.variables import format_plain_text  # the [chapters] extra

    return format_plain_text(text_plain, format_spec or "s")


def glued(name: str, format_spec: str = "") -> str:
    """The value glued under ``name`` in this kernel, formatted by ``format_spec``."""
    if name not in _values:
        raise KeyError(f"nothing glued as {name!r} yet: run the code cells above this text first")
    return format_glued(_values[name], format_spec)


def _record(message: dict) -> dict:
    """Display-publisher hook: keep the text/plain of every glued value."""
    content = message.get("content", {})
    scrapbook = (content.get("metadata") or {}).get("scrapbook")
    if scrapbook:
        prefix = scrapbook.get("mime_prefix", "")
        text = content.get("data", {}).get(prefix + "text/plain")
        if text is not None:
            _values[scrapbook["name"]] = text
    return message


def load_ipython_extension(ipython) -> None:
    """Record glued values and define ``glued`` (IPython calls this at kernel start)."""
    publisher = getattr(ipython, "display_pub", None)
    if publisher is not None and hasattr(publisher, "register_hook"):
        publisher.register_hook(_record)
    ipython.push({"glued": glued}, interactive=False)
