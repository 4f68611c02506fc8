r"""Computed numbers in the prose, on the site and in JupyterLab alike.

A chapter stores each number it quotes with myst-nb's ``glue(name, value)`` in a
code cell, and its prose reads it back with the inline role

    {eval}`glued("name", ".2f")`

(``glued(name, format_spec="")``; the format spec is Python's, as in ``{glue:text}``).
The same text is rendered by both readers of a chapter:

- **the site** (Sphinx, outputs from the execution cache): :class:`GluedRole` replaces
  myst-nb's ``eval`` role, which needs a live kernel, by a look-up of the glued value,
  formatted exactly as ``{glue:text}`` formats it;
- **JupyterLab** with jupyterlab-myst (``make lab``): running a markdown cell
  evaluates its ``{eval}`` expressions in the kernel.  This module is an IPython
  extension, loaded into every kernel of the project's environment (``make setup``
  writes the kernel configuration, :func:`install`): it records every value a cell
  glues and defines ``glued`` in the notebook's namespace.  Before the code above a
  sentence has run, JupyterLab shows the expression itself.

``glued`` asks nothing of ``lora_clusters``: a chapter's code is the same with or
without it, and the execution cache never sees it.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

#: myst-nb's prefix of the mime types of a value glued with ``display=False``
GLUE_PREFIX = "application/papermill.record/"
#: the one expression the site can render from the cache
EXPRESSION = re.compile(r"""^\s*glued\(\s*(["'])(?P<key>[\w.-]+)\1\s*(?:,\s*(["'])(?P<fmt>[^"']*)\3\s*)?\)\s*$""")

_values: dict[str, str] = {}


def format_glued(text_plain: str, format_spec: str = "") -> str:
    """The text ``{glue:text}`key:format_spec``` shows for a glued ``text/plain``."""
    from myst_nb.core.variables import format_plain_text

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


# --------------------------------------------------------------------------------------
# the site: {eval}`glued(...)` read from the glued outputs of the cached notebook
# --------------------------------------------------------------------------------------
def glued_role():
    """The Sphinx role that renders ``{eval}`glued("key", "fmt")``` from the cache:
    myst-nb's ``{glue:text}`` role, fed the key and format of the expression."""
    from myst_nb.core.variables import create_warning
    from myst_nb.ext.glue.roles import PasteTextRole

    class GluedRole(PasteTextRole):
        def run(self):
            match = EXPRESSION.match(self.text)
            if match is None:
                message = f'only glued("name", "format") can be evaluated from the cache, got {self.text!r}'
                return [], [create_warning(message, self.document, self.line, subtype="eval")]
            self.text = match["key"] + (f":{match['fmt']}" if match["fmt"] else "")
            return super().run()

    return GluedRole()


# --------------------------------------------------------------------------------------
# set-up: load the extension in every kernel of this environment
# --------------------------------------------------------------------------------------
KERNEL_CONFIG = """\
# written by `python -m lora_book.glued` (make setup): computed numbers in the chapters'
# prose ({eval}`glued(...)`) render in JupyterLab once the cells above them have run
c.InteractiveShellApp.extensions = ["lora_book.glued"]
"""


def install(prefix: Path | str = sys.prefix) -> Path:
    """Write the IPython kernel configuration of the environment at ``prefix``."""
    path = Path(prefix) / "etc" / "ipython" / "ipython_kernel_config.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != KERNEL_CONFIG:
        path.write_text(KERNEL_CONFIG)
    return path


if __name__ == "__main__":
    print(f"kernel configuration: {install()}")
