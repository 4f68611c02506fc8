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
  evaluates its ``{eval}`` expressions in the kernel.  The IPython extension
  :mod:`lora_clusters.glued` (in the science package, so that the reader's wheel ships
  it) records every value a cell glues and defines ``glued`` in the notebook's
  namespace; :func:`install` (``make setup``) loads it into every kernel of the
  project's environment, and a downloaded chapter loads it in its first code cell.
  Before the code above a sentence has run, JupyterLab shows the expression itself.

``glued`` changes nothing a chapter computes: its code is the same with or without it,
and the execution cache never sees it.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

# the kernel's half lives in the science package, which the reader's wheel ships
# (kernels configured before the move load ``lora_book.glued``: it still works)
from lora_clusters.glued import format_glued, glued, load_ipython_extension

__all__ = ["EXPRESSION", "format_glued", "glued", "glued_role", "install", "load_ipython_extension"]

#: myst-nb's prefix of the mime types of a value glued with ``display=False``
GLUE_PREFIX = "application/papermill.record/"
#: the one expression the site can render from the cache
EXPRESSION = re.compile(r"""^\s*glued\(\s*(["'])(?P<key>[\w.-]+)\1\s*(?:,\s*(["'])(?P<fmt>[^"']*)\3\s*)?\)\s*$""")


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
c.InteractiveShellApp.extensions = ["lora_clusters.glued"]
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
