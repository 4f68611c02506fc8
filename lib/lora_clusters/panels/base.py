"""What every live panel shares: controls that redraw, a summary line, an output area.

A panel (a subclass of :class:`Panel`) keeps its controls in ``panel.controls``, the
data it last drew as attributes, and shows its figure as a PNG in ``panel.output``
(:func:`show_in`), where tests, the static copy of the website
(:mod:`lora_clusters.static_panels`) and readers can read it back (:func:`shown_image`).
Nothing here draws: the panels of :mod:`lora_clusters.widgets` (chapters 1-5) and of
:mod:`lora_clusters.panels` (chapters 6-9) do.
"""

from __future__ import annotations

import base64
import io

import ipywidgets as W

__all__ = ["Panel", "another_value", "render_png", "show_in", "shown_image"]


def render_png(fig, dpi="figure") -> bytes:
    """The figure as PNG bytes, at the figure's own resolution unless ``dpi`` says
    otherwise (fixed layout, no tight bounding box: the panels set their margins once,
    which keeps a redraw cheap)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, pil_kwargs={"compress_level": 1})  # speed over size
    return buffer.getvalue()


def another_value(control):
    """A valid value of ``control`` different from its current one (the next option
    of a dropdown, the other state of a checkbox, a slider's far end): what a test or
    a benchmark sets to see a panel respond."""
    if isinstance(control, W.Checkbox):
        return not control.value
    if hasattr(control, "options"):
        options = [o[1] if isinstance(o, tuple) else o for o in control.options]
        return options[(options.index(control.value) + 1) % len(options)]
    if hasattr(control, "max"):
        # not the extreme itself for large ranges: keeps a test run short
        span = control.max - control.min
        # a quarter of the range, at least one step (a range of one step has one other value)
        step = max(span / 4, control.step)
        target = control.value + step if control.value + step <= control.max else control.value - step
        if isinstance(control, W.IntSlider):
            return int(round(target))
        return control.min + round((target - control.min) / control.step) * control.step
    raise TypeError(f"control must be a slider, dropdown or checkbox, got {type(control).__name__}")


def show_in(output: W.Output, fig, dpi="figure") -> None:
    """Replace what ``output`` shows by the figure (as PNG).  Setting the widget's
    ``outputs`` directly, rather than displaying inside ``with output:``, keeps the
    shown image in the kernel too, where tests and readers can inspect it."""
    png = base64.b64encode(render_png(fig, dpi)).decode("ascii")
    output.outputs = (
        {"output_type": "display_data", "metadata": {}, "data": {"image/png": png, "text/plain": "<panel figure>"}},
    )


def shown_image(output: W.Output) -> bytes | None:
    """The PNG bytes ``output`` currently shows (None when it shows no image)."""
    for item in output.outputs:
        if "image/png" in item.get("data", {}):
            return base64.b64decode(item["data"]["image/png"])
    return None


class Panel:
    """Shared plumbing: controls that redraw on change, a summary line, an output area.

    A subclass sets ``self.controls`` (name -> ipywidget), defines ``redraw()`` and
    calls ``self._build(rows)`` with the controls laid out in rows.

    ``WEBSITE_GRID`` (per class) lists, for each control, the values the website's
    static copy offers (every combination is drawn; see
    :func:`lora_clusters.static_panels.static_panel`); ``website_html``, once
    :func:`lora_clusters.static_panels.with_static_copy` has set it, is that copy.
    """

    WEBSITE_GRID: dict = {}
    #: the live range of a control whose bounds follow another control, in words
    #: (the static copy's note says it; other ranges are read off the controls)
    LIVE_RANGES: dict = {}
    website_html: str | None = None

    def _build(self, rows):
        self.output = W.Output()
        self.summary = W.HTML()
        for control in self.controls.values():
            control.observe(lambda _change: self.redraw(), names="value")
        self.widget = W.VBox([*(W.HBox(row) for row in rows), self.summary, self.output])
        self.redraw()

    def redraw(self) -> None:  # pragma: no cover - every panel defines its own
        raise NotImplementedError

    def values(self) -> dict:
        return {name: control.value for name, control in self.controls.items()}

    def _repr_mimebundle_(self, **kwargs):
        """The live widget (JupyterLab shows it) and, when the panel carries a static
        copy, that copy as HTML: a page rendered without a kernel (the website, whose
        build prefers HTML to a widget view) shows the copy instead of a dead widget."""
        bundle = dict(self.widget._repr_mimebundle_(**kwargs))
        bundle["text/plain"] = f"<{type(self).__name__}: a live panel, run the chapter in JupyterLab>"
        if self.website_html:
            bundle["text/html"] = self.website_html
        return bundle
