"""The website's static panels (lora_clusters.static_panels): each holds, for every
setting of its grid, exactly the picture the live panel draws for it; no two settings
look the same; and in Chromium, without a kernel, every control moves the picture, by
mouse and by keyboard, on a phone's width too.  Small grids keep this quick."""

import base64
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

import panel_data  # noqa: E402
from lora_clusters import static_panels, widgets  # noqa: E402
from lora_clusters.panels.depth import LayerCosineExplorer  # noqa: E402
from lora_clusters.panels.lm_lora import UpdateEigenvaluesExplorer  # noqa: E402
from lora_clusters.panels.spectra import HeadSpectraExplorer  # noqa: E402
from lora_clusters.panels.toy import ForgettingExplorer  # noqa: E402
from site_tools import watch_errors  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# two values for a few controls of each panel (three for the rank of the low-rank panel,
# whose third value the live panel lowers at d = 2); the others stay fixed
TEST_GRIDS = {
    widgets.DynamicsExplorer: dict(n=[10, 20], V=["identity", "rotation"], rescaled=[True, False]),
    widgets.StabilityExplorer: dict(log10_size=[-3.0, -2.0], rank=[1, 3], target=["V", "A"]),
    widgets.PhaseTransitionExplorer: dict(log10_eps=[-2.0, -1.5], seed=[5, 6]),
    widgets.LowRankExplorer: dict(rank=[1, 2, 3], d=[2, 3], n=[10, 20]),
    widgets.OrthogonalLoRAExplorer: dict(log10_eps=[-2.0, -1.0], C=[0.5, 2.0], V=["I", "diag(3, 3, 1)"]),
}
# the panels as the chapters make them
CHAPTER_PANELS = {
    widgets.DynamicsExplorer: dict(n=20, seed=5, t_max=10.0, V="identity"),
    widgets.StabilityExplorer: dict(log10_size=-2.0, rank=1, target="V", radius=0.2),
    widgets.PhaseTransitionExplorer: dict(log10_eps=-2.0, n=20, seed=5),
    widgets.LowRankExplorer: dict(rank=1, d=2, n=20, seed=1),
    widgets.OrthogonalLoRAExplorer: dict(log10_eps=-2.0, C=2.0, spread=0.5, V="I", seed=0),
}
IDS = [cls.__name__ for cls in TEST_GRIDS]


@pytest.fixture(scope="session")
def copies():
    """Each panel (as its chapter makes it) and its static copy on the test grid."""
    made = {}
    for cls, grid in TEST_GRIDS.items():
        panel = cls(**CHAPTER_PANELS[cls])
        made[cls] = (panel, static_panels.static_panel(panel, grid))
    return made


def pixels(encoded: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(encoded)).convert("RGBA"))


@pytest.mark.parametrize("cls", TEST_GRIDS, ids=IDS)
def test_the_copy_shows_what_the_live_panel_draws(copies, cls):
    panel, copy = copies[cls]
    names, shown = static_panels.embedded_states(copy.html)
    assert names == list(TEST_GRIDS[cls])
    settings = copy.settings
    # the first, the middle and the last, each set on a fresh live panel as a reader
    # would (control by control)
    picks = [settings[0], settings[len(settings) // 2], settings[-1]]
    for values in picks:
        live = cls(**CHAPTER_PANELS[cls])
        for _ in range(2):  # twice: the range of the low-rank panel's rank follows d
            for name, value in values.items():
                live.controls[name].value = value
        assert live.values() | values == live.values(), values
        image, summary = shown[tuple(values[name] for name in names)]
        np.testing.assert_array_equal(pixels(image), pixels(widgets.shown_image(live.output)), err_msg=str(values))
        assert summary == live.summary.value
    # the copy was made by driving the chapter's panel, which is back where it was
    assert panel.values() == cls(**CHAPTER_PANELS[cls]).values()


@pytest.mark.parametrize("cls", TEST_GRIDS, ids=IDS)
def test_no_two_settings_show_the_same_picture(copies, cls):
    _, copy = copies[cls]
    assert copy.duplicates() == []
    pictures = [copy.image(values) for values in copy.settings]
    assert (
        len(set(pictures))
        == len(pictures)
        == int(np.prod([len(v) for v in TEST_GRIDS[cls].values()]))
        - (
            2 if cls is widgets.LowRankExplorer else 0  # rank 3 at d = 2: the panel lowers it to 2
        )
    )


def test_a_setting_the_live_panel_does_not_take_shows_where_it_ends(copies):
    _, copy = copies[widgets.LowRankExplorer]
    lowered = dict(rank=3, d=2, n=10)
    assert copy.image(lowered) == copy.image(dict(lowered, rank=2))
    assert lowered not in copy.settings


def test_a_panel_displays_live_and_as_its_copy_only_for_the_website(monkeypatch):
    grid = dict(n=[10, 20], seed=[5, 6])
    monkeypatch.delenv(static_panels.ENV, raising=False)
    panel = static_panels.with_static_copy(widgets.DynamicsExplorer(n=10, seed=5), grid)
    bundle = panel._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle and "text/html" not in bundle
    monkeypatch.setenv(static_panels.ENV, "1")
    assert static_panels.with_static_copy(panel, grid) is panel
    bundle = panel._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    html = bundle["text/html"]
    assert html.startswith('<div class="lcsp"') and "4 settings" in html and "JupyterLab" in html
    # the note names what the page offers and what JupyterLab offers
    assert "<i>tokens n</i> = 10, 20" in html and "<i>tokens n</i> from 2 to 100" in html


def test_grids_are_checked():
    panel = widgets.DynamicsExplorer(n=10, seed=5)
    with pytest.raises(ValueError, match="no control named"):
        static_panels.static_panel(panel, dict(tokens=[10, 20]))
    with pytest.raises(KeyError, match="not a value of the grid"):
        static_panels.static_panel(panel, dict(n=[20, 30]))  # the panel shows n = 10
    with pytest.raises(ValueError, match="distinct"):
        static_panels.static_panel(panel, dict(n=[10, 10]))
    with pytest.raises(ValueError, match="must be \\[True, False\\]"):
        static_panels.static_panel(panel, dict(rescaled=[True]))


def test_every_website_grid_moves_every_control_and_holds_the_chapters_panel():
    for cls, chapter in CHAPTER_PANELS.items():
        grid = cls.WEBSITE_GRID
        panel_controls = cls.__init__.__code__.co_varnames
        assert set(chapter) <= set(panel_controls)
        assert all(len(values) >= 2 for values in grid.values()), cls.__name__
        for name, value in chapter.items():
            assert name not in grid or value in grid[name], (cls.__name__, name)


def test_chapters_show_static_copies_and_no_dead_widget():
    import yaml

    chapters = sorted(path.stem for path in (ROOT / "book").glob("ch0*.md"))
    assert len(chapters) == 9, chapters
    for name in chapters:
        text = (ROOT / "book" / f"{name}.md").read_text()
        assert "with_static_copy(" in text, name
        assert "needs a live kernel" not in text, name
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    overrides = config["sphinx"]["config"]["nb_mime_priority_overrides"]
    assert ["html", "application/vnd.jupyter.widget-view+json", None] in overrides


# ---------------------------------------------------------------------------------------
# in Chromium, from a file
# ---------------------------------------------------------------------------------------


PAGE = '<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">'
PAGE += "<title>panel</title></head><body>{}</body></html>"


def open_panel(browser, tmp_path, copy, width=1280):
    path = tmp_path / f"{copy.panel}.html"
    path.write_text(PAGE.format(copy.html), encoding="utf-8")
    page = browser.new_page(viewport={"width": width, "height": 900})
    problems = watch_errors(page, warnings=True)
    page.goto(path.as_uri())
    page.wait_for_function("() => document.querySelector('.lcsp').getAttribute('data-lcsp-ready')")
    return page, problems


def shown(page) -> str:
    return page.evaluate("() => document.querySelector('img.lcsp-image').src")


def summary(page) -> str:
    return page.evaluate("() => document.querySelector('.lcsp-summary').innerHTML")


def check_shows(page, copy, src):
    """The picture and summary shown are the copy's for the setting the panel shows."""
    key = page.evaluate("() => document.querySelector('.lcsp').getAttribute('data-lcsp-key')")
    values = {c.name: c.values[int(i)] for c, i in zip(copy.controls, key.split(","))}
    assert src.split(",", 1)[1] == base64.b64encode(copy.image(values)).decode()
    # the summary as the browser writes the copy's HTML back
    expected = page.evaluate(
        "(h) => { const d = document.createElement('div'); d.innerHTML = h; return d.innerHTML; }", copy.summary(values)
    )
    assert summary(page) == expected


def move_by_mouse(page, index, kind):
    control = page.locator(f"[data-lcsp-control='{index}']")
    if kind == "checkbox":
        control.click()
    elif kind == "select":
        # a native select's list is not part of the page: pick the next option as a click would
        control.select_option(str((int(control.input_value()) + 1) % control.locator("option").count()))
    else:
        box = control.bounding_box()
        at_start = control.input_value() == "0"
        # a click near the other end of the track
        page.mouse.click(box["x"] + (box["width"] - 2 if at_start else 2), box["y"] + box["height"] / 2)


def move_by_keyboard(page, index, kind):
    control = page.locator(f"[data-lcsp-control='{index}']")
    control.focus()
    if kind == "checkbox":
        page.keyboard.press("Space")
        return
    position, last = control.evaluate(
        "el => el.type === 'range' ? [+el.value, +el.max] : [el.selectedIndex, el.options.length - 1]"
    )
    if kind == "range":
        page.keyboard.press("ArrowLeft" if position == last else "ArrowRight")
    else:
        page.keyboard.press("ArrowUp" if position == last else "ArrowDown")


def check_every_control_moves_the_picture(browser, tmp_path, copy, before_move=None):
    """Move every control of the copy, by mouse then by keyboard, on a page of its own:
    each move shows another picture, the one the copy holds for the setting shown."""
    page, problems = open_panel(browser, tmp_path, copy)
    try:
        for move in (move_by_mouse, move_by_keyboard):
            for index, control in enumerate(copy.controls):
                if before_move:
                    before_move(page, control)
                before = shown(page)
                move(page, index, control.kind)
                page.wait_for_function("(src) => document.querySelector('img.lcsp-image').src !== src", arg=before)
                check_shows(page, copy, shown(page))
    finally:
        page.close()
    assert problems == []


@pytest.mark.parametrize("cls", TEST_GRIDS, ids=IDS)
def test_every_control_moves_the_picture_in_chromium(copies, browser, tmp_path, cls):
    def lower_rank(page, control):
        if cls is widgets.LowRankExplorer and control.name == "rank":
            # from rank 1 at d = 2: up to 2 (rank 3 is lowered to 2 at d = 2)
            page.evaluate(
                "() => { const r = document.querySelector(\"[data-lcsp-control='0']\"); "
                "r.value = '0'; r.dispatchEvent(new Event('input')); }"
            )

    check_every_control_moves_the_picture(browser, tmp_path, copies[cls][1], lower_rank)


# the panels of chapters 6-9 draw stored results; here small ones (panel_data), on the
# grid each panel offers the website for its results
RESULT_PANELS = {
    "ForgettingExplorer": lambda: ForgettingExplorer(panel_data.toy_runs()),
    "HeadSpectraExplorer": lambda: HeadSpectraExplorer(panel_data.head_spectra_of_two_models(), model="big"),
    "LayerCosineExplorer": lambda: LayerCosineExplorer(panel_data.small_result(), kind="a", text=0),
    "UpdateEigenvaluesExplorer": lambda: UpdateEigenvaluesExplorer([panel_data.lm_run(0), panel_data.lm_run(1)]),
}


@pytest.fixture(scope="session")
def result_copies():
    import torch

    torch.set_num_threads(1)
    return {name: static_panels.static_panel(make()) for name, make in RESULT_PANELS.items()}


@pytest.mark.parametrize("name", RESULT_PANELS)
def test_every_control_of_a_results_panel_moves_the_picture_in_chromium(result_copies, browser, tmp_path, name):
    copy = result_copies[name]
    assert copy.duplicates() == [] and len(copy.controls) >= 2
    check_every_control_moves_the_picture(browser, tmp_path, copy)


def test_the_copy_moves_its_rank_down_with_d_as_the_live_panel_does(copies, browser, tmp_path):
    _, copy = copies[widgets.LowRankExplorer]
    page, problems = open_panel(browser, tmp_path, copy)
    try:
        d = page.locator("[data-lcsp-control='1']")
        d.focus()
        page.keyboard.press("ArrowRight")  # d = 3
        rank = page.locator("[data-lcsp-control='0']")
        rank.focus()
        page.keyboard.press("End")  # rank 3 of 3
        assert page.locator("output").first.inner_text() == "3"
        d.focus()
        page.keyboard.press("ArrowLeft")  # d = 2: the live panel lowers the rank to 2
        assert rank.input_value() == "1" and page.locator("output").first.inner_text() == "2"
        check_shows(page, copy, shown(page))
    finally:
        page.close()
    assert problems == []


@pytest.mark.parametrize(
    "cls", [widgets.DynamicsExplorer, widgets.OrthogonalLoRAExplorer], ids=["Dynamics", "Orthogonal"]
)
def test_nothing_is_wider_than_a_phone(copies, browser, tmp_path, cls):
    _, copy = copies[cls]
    page, problems = open_panel(browser, tmp_path, copy, width=390)
    try:
        widths = page.evaluate(
            """() => ({page: document.scrollingElement.scrollWidth,
                      wide: [...document.querySelectorAll('.lcsp, .lcsp *')]
                        .filter(el => el.getBoundingClientRect().right > 390.5)
                        .map(el => el.tagName + '.' + el.className)})"""
        )
        note = page.locator(".lcsp-note").inner_text()
    finally:
        page.close()
    assert widths["page"] <= 390 and widths["wide"] == [], widths
    assert "JupyterLab" in note and "settings" in note
    assert problems == []


def test_a_tap_shows_the_picture_at_full_size_inside_its_frame_on_a_phone(copies, browser, tmp_path):
    _, copy = copies[widgets.OrthogonalLoRAExplorer]  # 604 px wide: shrunk on a phone
    page, problems = open_panel(browser, tmp_path, copy, width=390)
    measure = """() => { const img = document.querySelector('img.lcsp-image'),
                                frame = document.querySelector('.lcsp-frame');
        return {img: img.getBoundingClientRect().width, natural: img.naturalWidth,
                frame: frame.clientWidth, scroll: frame.scrollWidth,
                page: document.scrollingElement.scrollWidth,
                pressed: img.getAttribute('aria-pressed'),
                hint: getComputedStyle(document.querySelector('.lcsp-hint')).display}; }"""
    try:
        before = page.evaluate(measure)
        page.locator("img.lcsp-image").click()
        zoomed = page.evaluate(measure)
        page.locator("img.lcsp-image").press("Enter")  # and back, by keyboard
        after = page.evaluate(measure)
    finally:
        page.close()
    assert before["img"] <= 390 < before["natural"] and before["hint"] != "none"
    assert zoomed["img"] == before["natural"] and zoomed["scroll"] > zoomed["frame"]
    assert zoomed["page"] <= 390 and zoomed["pressed"] == "true"  # the frame scrolls, not the page
    assert after["img"] == before["img"] and after["pressed"] == "false"
    assert problems == []


def test_the_full_size_hint_is_hidden_on_a_wide_screen(copies, browser, tmp_path):
    _, copy = copies[widgets.OrthogonalLoRAExplorer]
    page, problems = open_panel(browser, tmp_path, copy, width=1280)
    try:
        hint = page.evaluate("() => getComputedStyle(document.querySelector('.lcsp-hint')).display")
    finally:
        page.close()
    assert hint == "none" and problems == []
