"""The website's panels: the live JupyterLab panels, drawn in advance for a grid of values.

The website is read without a kernel, so a live panel (:mod:`lora_clusters.widgets`)
would be dead there.  Its static copy holds what the panel itself shows for every
combination of the values of its grid: the panel is driven through the grid, control
by control, and each time the PNG its redraw put in its output area
(:func:`lora_clusters.panels.base.shown_image`) and its summary line are kept.  Nothing is
drawn twice by other code: the copy is the panel's own pictures, re-encoded without
loss (lossless WebP, pixel for pixel the PNG; optimised PNG where Pillow has no WebP).

The copy is one self-contained block of HTML (:attr:`StaticPanel.html`): real controls
(a range input per slider, stepping through the grid's values, a select per dropdown, a
checkbox per checkbox), the picture and the summary line, a note with the values the
page offers and the ranges JupyterLab offers, the pictures as base64 data, and a small
inline script that swaps picture and summary on every move.  When a setting is not one
the live panel can take (a rank above d, which its slider lowers to d), the copy shows
the setting the live panel ends at and moves its controls there, as the live one does.

A chapter's cell only calls :func:`with_static_copy` on its panel::

    explorer = DynamicsExplorer(n=20, seed=5, t_max=10.0, V="identity")
    with_static_copy(explorer)

When the website is built (``LORA_BOOK_WEBSITE=1``, which the book's Sphinx extension
and ``lora_book.cache execute`` set for the kernels they start: :data:`ENV`), the copy is
made while the chapter executes and the panel displays as both, the live widget for
JupyterLab and the copy as HTML for the page (the site's build prefers HTML to a widget
view).  Run in JupyterLab the call costs nothing and the live panel is all there is.
"""

from __future__ import annotations

import base64
import hashlib
import html as html_lib
import io
import itertools
import json
import math
import os
import re
from dataclasses import dataclass, field, replace

__all__ = [
    "ENV",
    "StaticControl",
    "StaticPanel",
    "building_website",
    "embedded_states",
    "static_panel",
    "with_static_copy",
]

#: set to 1 in the environment of the kernels that execute the chapters for the website
ENV = "LORA_BOOK_WEBSITE"


def building_website() -> bool:
    """True when ``LORA_BOOK_WEBSITE`` says the outputs go to the website."""
    return os.environ.get(ENV, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class StaticControl:
    """One control of a static copy: the live control's ``name`` and ``label``, its
    ``kind`` (``range``, ``select`` or ``checkbox``), the grid's ``values`` and how they
    read (``labels``), and the range the live control takes (``live``, for the note)."""

    name: str
    label: str
    kind: str
    values: tuple
    labels: tuple
    live: str


@dataclass(frozen=True)
class _Alias:
    """A setting the live panel does not take as it is: it shows ``target`` instead."""

    target: tuple


@dataclass
class StaticPanel:
    """The static copy of one panel: see the module's docstring.

    ``states`` maps a setting (one index into each control's values) to
    ``(image, summary)`` indices into ``images`` and ``summaries``, or, for a setting the
    live panel cannot take, to the setting it ends at (an ``_Alias``).  ``initial`` is the setting the
    panel showed when the copy was made (the copy starts there)."""

    panel: str
    controls: list[StaticControl]
    initial: tuple
    states: dict
    images: list[bytes]
    image_type: str
    image_size: tuple
    summaries: list[str]
    fixed: dict = field(default_factory=dict)

    # -- what the copy holds ------------------------------------------------------------
    def key(self, values: dict) -> tuple:
        """The setting of ``values`` (a value for every control of the grid)."""
        return tuple(_index(c.values, values[c.name], c.name) for c in self.controls)

    def image(self, values: dict) -> bytes:
        """The encoded picture the copy shows for ``values``."""
        return self.images[self._state(values)[0]]

    def summary(self, values: dict) -> str:
        """The summary line (HTML) the copy shows for ``values``."""
        return self.summaries[self._state(values)[1]]

    def _state(self, values):
        state = self.states[self.key(values)]
        return self.states[state.target] if isinstance(state, _Alias) else state

    @property
    def settings(self) -> list[dict]:
        """Every setting of the grid that the live panel takes as it is, as values."""
        return [
            {c.name: c.values[i] for c, i in zip(self.controls, key)}
            for key, state in self.states.items()
            if not isinstance(state, _Alias)
        ]

    def duplicates(self) -> list[tuple[dict, dict]]:
        """Pairs of different settings (both taken as they are) that show the same
        picture: a control that would not change the figure there."""
        seen, pairs = {}, []
        for key, state in self.states.items():
            if isinstance(state, _Alias):
                continue
            values = {c.name: c.values[i] for c, i in zip(self.controls, key)}
            if state[0] in seen:
                pairs.append((seen[state[0]], values))
            else:
                seen[state[0]] = values
        return pairs

    @property
    def image_bytes(self) -> int:
        """Bytes of the pictures as the page carries them (base64)."""
        return sum(4 * math.ceil(len(b) / 3) for b in self.images)

    # -- the page's block ---------------------------------------------------------------
    @property
    def html(self) -> str:
        """The self-contained HTML block of the copy (styles, controls, picture, summary,
        note, data and script)."""
        return _render_html(self)


def _index(values, value, name) -> int:
    for i, candidate in enumerate(values):
        if _same_value(candidate, value):
            return i
    raise KeyError(f"{value!r} is not a value of the grid of {name!r}: {list(values)}")


def _same_value(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or a == b and type(a) is type(b)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


# ---------------------------------------------------------------------------------------
# driving the live panel
# ---------------------------------------------------------------------------------------
def _set_values(panel, values: dict) -> dict:
    """Set the live controls to ``values`` and return the values they hold after.  A
    control whose range follows another (the rank of the low-rank panel follows d) may
    need a second pass; a value the panel does not take stays changed (clamped)."""
    for _ in range(3):
        for name, value in values.items():
            control = panel.controls[name]
            if not _same_value(control.value, value):
                control.value = value
        now = panel.values()
        if all(_same_value(now[name], value) for name, value in values.items()):
            break
    return panel.values()


def _control_spec(name: str, control, values) -> StaticControl:
    import ipywidgets as W

    label = control.description or name
    if isinstance(control, W.Checkbox):
        if sorted(values) != [False, True]:
            raise ValueError(f"the grid of checkbox {name!r} must be [True, False] (in any order), got {values}")
        return StaticControl(
            name, label, "checkbox", tuple(values), tuple("on" if v else "off" for v in values), "on or off"
        )
    if hasattr(control, "options"):
        options = [o if not isinstance(o, tuple) else o[1] for o in control.options]
        names = [str(o) if not isinstance(o, tuple) else str(o[0]) for o in control.options]
        for v in values:
            if v not in options:
                raise ValueError(f"{v!r} is not an option of {name!r}: {options}")
        labels = tuple(names[options.index(v)] for v in values)
        if isinstance(control, W.SelectionSlider):
            # a slider over a few values (the depths): a range input on the page too
            if [options.index(v) for v in values] != sorted(options.index(v) for v in values):
                raise ValueError(f"the grid of slider {name!r} must follow its options' order, got {values}")
            return StaticControl(name, label, "range", tuple(values), labels, "any of " + ", ".join(names))
        live = "any of " + ", ".join(names) if len(options) > len(values) else ""
        return StaticControl(name, label, "select", tuple(values), labels, live)
    if hasattr(control, "min") and hasattr(control, "max"):
        if list(values) != sorted(values):
            raise ValueError(f"the grid of slider {name!r} must be increasing, got {values}")
        fmt = getattr(control, "readout_format", "") or ""
        labels = tuple(_format(v, fmt) for v in values)
        step = getattr(control, "step", 1)
        is_int = isinstance(control.value, int)
        live = f"from {_format(control.min, fmt)} to {_format(control.max, fmt)}"
        if not is_int:
            live += f" in steps of {step:g}"
        return StaticControl(name, label, "range", tuple(values), labels, live)
    raise TypeError(f"control {name!r} must be a slider, dropdown or checkbox, got {type(control).__name__}")


def _format(value, fmt: str) -> str:
    try:
        text = format(value, fmt) if fmt else f"{value:g}"
    except (TypeError, ValueError):
        text = str(value)
    if "." in text and "e" not in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _encode(png: bytes) -> tuple[bytes, str, tuple]:
    """The PNG re-encoded without loss: lossless WebP (RGB when the PNG is opaque), or an
    optimised PNG where Pillow lacks WebP; returns (bytes, MIME type, (width, height))."""
    from PIL import Image, features

    image = Image.open(io.BytesIO(png))
    image.load()
    if image.mode == "RGBA" and image.getchannel("A").getextrema() == (255, 255):
        image = image.convert("RGB")
    buffer = io.BytesIO()
    if features.check("webp"):
        image.save(buffer, "WEBP", lossless=True, method=4, quality=25, exact=True)
        return buffer.getvalue(), "image/webp", image.size
    image.save(buffer, "PNG", optimize=True)
    return buffer.getvalue(), "image/png", image.size


def static_panel(panel, grid: dict | None = None) -> StaticPanel:
    """The static copy of the live ``panel`` (a :class:`lora_clusters.panels.base.Panel`)
    for every combination of the values of ``grid`` (control name -> values; default
    the panel's ``WEBSITE_GRID``).  Controls left out of the grid keep their value.

    The panel itself is driven through the grid (in the order of the product, so that
    a move changes one control most of the time) and set back to its values after; the
    values it had must be in the grid, and every value of the grid must be one the
    panel takes (as it is) in some setting."""
    from .panels.base import shown_image

    grid = dict(panel.WEBSITE_GRID if grid is None else grid)
    if not grid:
        raise ValueError(f"{type(panel).__name__} has no grid of values: pass grid=")
    unknown = set(grid) - set(panel.controls)
    if unknown:
        raise ValueError(f"no control named {sorted(unknown)} in {type(panel).__name__} ({list(panel.controls)})")
    names = [name for name in panel.controls if name in grid]
    for name in names:
        values = list(grid[name])
        if not values or any(_same_value(a, b) for a, b in itertools.combinations(values, 2)):
            raise ValueError(f"the grid of {name!r} must list distinct values, got {values}")
    controls = [_control_spec(name, panel.controls[name], list(grid[name])) for name in names]
    controls = [replace(c, live=panel.LIVE_RANGES[c.name]) if c.name in panel.LIVE_RANGES else c for c in controls]
    initial_values = panel.values()
    initial = tuple(_index(c.values, initial_values[c.name], c.name) for c in controls)
    fixed = {name: value for name, value in initial_values.items() if name not in grid}

    states, images, summaries = {}, [], []
    image_index, summary_index = {}, {}
    image_type, image_size = "image/png", (0, 0)
    try:
        for key in itertools.product(*(range(len(c.values)) for c in controls)):
            wanted = {c.name: c.values[i] for c, i in zip(controls, key)}
            shown = _set_values(panel, wanted)
            try:
                shown_key = tuple(_index(c.values, shown[c.name], c.name) for c in controls)
            except KeyError as error:
                raise ValueError(
                    f"{type(panel).__name__} shows {shown} when set to {wanted}: not a setting of the grid"
                ) from error
            if shown_key != key:
                states[key] = _Alias(shown_key)
                continue
            png = shown_image(panel.output)
            if png is None:
                raise RuntimeError(f"{type(panel).__name__} shows no picture for {wanted}")
            encoded, image_type, image_size = _encode(png)
            if encoded not in image_index:
                image_index[encoded] = len(images)
                images.append(encoded)
            summary = panel.summary.value
            if summary not in summary_index:
                summary_index[summary] = len(summaries)
                summaries.append(summary)
            states[key] = (image_index[encoded], summary_index[summary])
    finally:
        _set_values(panel, {name: initial_values[name] for name in names})
    for key, state in states.items():
        if isinstance(state, _Alias) and isinstance(states.get(state.target), (_Alias, type(None))):
            raise ValueError(f"setting {key} leads to {state.target}, which the panel does not take as it is")
    for c_index, c in enumerate(controls):
        reached = {key[c_index] for key, state in states.items() if not isinstance(state, _Alias)}
        if reached != set(range(len(c.values))):
            missing = [c.values[i] for i in range(len(c.values)) if i not in reached]
            raise ValueError(f"the panel never takes {c.name} = {missing}: drop them from the grid")
    return StaticPanel(
        panel=type(panel).__name__,
        controls=controls,
        initial=initial,
        states=states,
        images=images,
        image_type=image_type,
        image_size=image_size,
        summaries=summaries,
        fixed=fixed,
    )


def with_static_copy(panel, grid: dict | None = None, *, force: bool = False):
    """``panel``, carrying its static copy (:func:`static_panel`) as ``panel.website_html``
    when the website is being built (:func:`building_website`) or ``force`` is set; the
    panel then displays as the live widget and, for a page without a kernel, the copy.
    Returns the panel, so that a chapter's cell ends with this call."""
    if force or building_website():
        panel.website_html = static_panel(panel, grid).html
    return panel


# ---------------------------------------------------------------------------------------
# the HTML block
# ---------------------------------------------------------------------------------------
# styles scoped to one block (ID); on paper, the first picture and its summary only: a
# printed control cannot move, and the note speaks of the page's controls
_STYLE = """
#ID { margin: 0.5rem 0 1rem; max-width: 100%; }
#ID .lcsp-controls { display: flex; flex-wrap: wrap; gap: 0.3rem 1.2rem; margin-bottom: 0.3rem; }
#ID .lcsp-control { display: flex; align-items: center; gap: 0.4rem; max-width: 100%; font-size: 0.9rem; }
#ID .lcsp-control input[type=range] { width: 8rem; max-width: 40vw; margin: 0; }
#ID .lcsp-control select { max-width: 12rem; font-size: 0.9rem; }
#ID .lcsp-control output { min-width: 2.5rem; font-variant-numeric: tabular-nums; }
#ID .lcsp-summary { font-size: 0.9rem; margin: 0.2rem 0; overflow-wrap: anywhere; }
#ID .lcsp-frame { max-width: 100%; overflow-x: auto; }
#ID img.lcsp-image { display: block; max-width: 100%; height: auto; cursor: zoom-in; }
#ID img.lcsp-image.lcsp-zoomed { max-width: none; cursor: zoom-out; }
#ID .lcsp-hint { display: none; }
@media (max-width: 760px) { #ID .lcsp-hint { display: inline; } }
#ID .lcsp-note { font-size: 0.85rem; margin: 0.3rem 0 0; opacity: 0.85; overflow-wrap: anywhere; }
@media print { #ID .lcsp-controls, #ID .lcsp-note { display: none; } }
"""

# the script of a block: reads the setting of the controls, shows its picture and
# summary, and moves the controls to the setting shown when the live panel would
_SCRIPT = """
(function () {
  var root = document.getElementById("ID");
  if (!root || root.getAttribute("data-lcsp-ready")) return;
  root.setAttribute("data-lcsp-ready", "1");
  var data = JSON.parse(root.querySelector("script.lcsp-data").textContent);
  var img = root.querySelector("img.lcsp-image");
  var summary = root.querySelector(".lcsp-summary");
  var inputs = Array.prototype.slice.call(root.querySelectorAll("[data-lcsp-control]"));
  var prefix = "data:" + data.type + ";base64,";
  data.images[data.states[data.initial][0]] = img.getAttribute("src").slice(prefix.length);
  function get(el) {
    if (el.type === "checkbox") return el.checked ? +el.getAttribute("data-on") : +el.getAttribute("data-off");
    return +el.value;
  }
  function label(el, i) {
    if (el.type !== "range") return;
    var text = data.labels[+el.getAttribute("data-lcsp-control")][i];
    el.parentNode.querySelector("output").textContent = text;
    el.setAttribute("aria-valuetext", text);
  }
  function set(el, i) {
    if (el.type === "checkbox") el.checked = i === +el.getAttribute("data-on");
    else el.value = String(i);
    label(el, i);
  }
  function show() {
    var key = inputs.map(get).join(",");
    var state = data.states[key];
    if (typeof state === "string") {
      key = state;
      var target = key.split(",").map(Number);
      inputs.forEach(function (el, k) { set(el, target[k]); });
      state = data.states[key];
    } else {
      inputs.forEach(function (el) { label(el, get(el)); });
    }
    if (root.getAttribute("data-lcsp-key") === key) return;
    root.setAttribute("data-lcsp-key", key);
    img.src = prefix + data.images[state[0]];
    summary.innerHTML = data.summaries[state[1]];
  }
  inputs.forEach(function (el) {
    el.addEventListener("input", show);
    el.addEventListener("change", show);
  });
  // on a narrow screen the picture shrinks to the column: a tap (or Enter) shows it at
  // its own size, scrolling sideways inside its frame, and a second tap shrinks it back
  function zoom() {
    var on = img.classList.toggle("lcsp-zoomed");
    img.setAttribute("aria-pressed", on ? "true" : "false");
  }
  img.addEventListener("click", zoom);
  img.addEventListener("keydown", function (event) {
    if (event.key === "Enter" || event.key === " ") { event.preventDefault(); zoom(); }
  });
})();
"""


def _key_text(key) -> str:
    return ",".join(str(i) for i in key)


def _render_html(copy: StaticPanel) -> str:
    esc = html_lib.escape
    first = copy.states[copy.initial]
    data = {
        "type": copy.image_type,
        "initial": _key_text(copy.initial),
        "names": [c.name for c in copy.controls],
        "values": [list(c.values) for c in copy.controls],
        "labels": [list(c.labels) for c in copy.controls],
        "states": {
            _key_text(key): _key_text(state.target) if isinstance(state, _Alias) else list(state)
            for key, state in copy.states.items()
        },
        "summaries": copy.summaries,
        # the first picture is in the <img> tag (it shows without the script): not twice
        "images": [
            None if i == first[0] else base64.b64encode(image).decode("ascii") for i, image in enumerate(copy.images)
        ],
    }
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False).replace("</", "<\\/")
    uid = "lcsp-" + hashlib.sha256(payload.encode()).hexdigest()[:12]
    rows = []
    for k, (control, i) in enumerate(zip(copy.controls, copy.initial)):
        name = esc(control.label)
        if control.kind == "range":
            rows.append(
                f'<label class="lcsp-control"><span>{name}</span>'
                f'<input type="range" min="0" max="{len(control.values) - 1}" step="1" value="{i}" '
                f'data-lcsp-control="{k}" aria-valuetext="{esc(control.labels[i])}">'
                f"<output>{esc(control.labels[i])}</output></label>"
            )
        elif control.kind == "select":
            options = "".join(
                f'<option value="{j}"{" selected" if j == i else ""}>{esc(text)}</option>'
                for j, text in enumerate(control.labels)
            )
            rows.append(
                f'<label class="lcsp-control"><span>{name}</span>'
                f'<select data-lcsp-control="{k}">{options}</select></label>'
            )
        else:
            on, off = control.values.index(True), control.values.index(False)
            checked = " checked" if control.values[i] else ""
            rows.append(
                f'<label class="lcsp-control"><input type="checkbox" data-lcsp-control="{k}" '
                f'data-on="{on}" data-off="{off}"{checked}><span>{name}</span></label>'
            )
    width, height = copy.image_size
    image = base64.b64encode(copy.images[first[0]]).decode("ascii")
    return (
        f'<div class="lcsp" id="{uid}" data-lcsp-panel="{esc(copy.panel)}" data-lcsp-key="{_key_text(copy.initial)}">'
        f"<style>{_STYLE.replace('ID', uid).strip()}</style>"
        f'<div class="lcsp-controls">{"".join(rows)}</div>'
        f'<div class="lcsp-summary" aria-live="polite">{copy.summaries[first[1]]}</div>'
        f'<div class="lcsp-frame"><img class="lcsp-image" src="data:{copy.image_type};base64,{image}" '
        f'width="{width}" height="{height}" tabindex="0" role="button" aria-pressed="false" '
        f'alt="{esc(copy.panel)}: the figure for the chosen values (activate to see it at full size)"></div>'
        f'<p class="lcsp-note">{_note(copy)}</p>'
        f'<script type="application/json" class="lcsp-data">{payload}</script>'
        f"<script>{_SCRIPT.replace('ID', uid).strip()}</script>"
        "</div>"
    )


def _note(copy: StaticPanel) -> str:
    """What the page offers, and that JupyterLab takes any value."""
    esc = html_lib.escape
    offered, live = [], []
    for c in copy.controls:
        if c.kind == "checkbox":
            offered.append(f"<i>{esc(c.label)}</i> on or off")
        elif c.kind == "select" and not c.live:
            offered.append(f"every <i>{esc(c.label)}</i>")
        else:
            offered.append(f"<i>{esc(c.label)}</i> = " + ", ".join(esc(t) for t in c.labels))
        if c.live and c.kind != "checkbox":
            live.append(f"<i>{esc(c.label)}</i> {esc(c.live)}")
    fixed = "".join(f"; {esc(name)} = {esc(str(value))} (fixed here)" for name, value in copy.fixed.items())
    settings = sum(1 for s in copy.states.values() if not isinstance(s, _Alias))
    return (
        '<span class="lcsp-hint">Tap the picture to see it at full size. </span>'
        f"Without a kernel, this page offers {'; '.join(offered)}{fixed}: {settings} settings, each "
        "drawn by the panel's own code when the chapter was built. In JupyterLab (<code>make lab</code>) the "
        "live panel takes any value" + (f": {'; '.join(live)}." if live else ".")
    )


def embedded_states(block: str) -> tuple[list[str], dict]:
    """Read back a copy's HTML block: the names of its controls, and for every setting
    of its grid (a tuple of values in the order of those names) the picture (encoded
    bytes) and the summary line the page shows for it."""
    payload = re.search(r'<script type="application/json" class="lcsp-data">(.*?)</script>', block, re.S)
    first = re.search(r'<img class="lcsp-image" src="data:[^;]+;base64,([^"]+)"', block)
    if payload is None or first is None:
        raise ValueError("no static panel in this HTML")
    data = json.loads(payload[1])
    images = [base64.b64decode(first[1] if b is None else b) for b in data["images"]]
    shown = {}
    for key, state in data["states"].items():
        if isinstance(state, str):
            state = data["states"][state]
        setting = tuple(values[int(i)] for values, i in zip(data["values"], key.split(",")))
        shown[setting] = (images[state[0]], data["summaries"][state[1]])
    return data["names"], shown
