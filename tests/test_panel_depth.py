"""Chapter 8's panel (lora_clusters.panels.depth): one text's mean token similarity
through the repeated stack.  A small LayerSimilarities made by hand (two kinds with 4
and 2 texts, a stack of 3 layers run twice) stands in for the stored study: the summary
must read its arrays, every control must move the picture, the text slider must follow
the kind, and the static copy must hold exactly what the live panel draws."""

import html
import io
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from lora_clusters import static_panels  # noqa: E402
from lora_clusters.panels.base import another_value, shown_image  # noqa: E402
from lora_clusters.panels.depth import LayerCosineExplorer  # noqa: E402
from panel_data import DEPTH, TIMES, small_result  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def pixels(encoded: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(encoded)).convert("RGBA"))


def bold_numbers(summary: str) -> list[str]:
    return re.findall(r"<b>([^<]*)</b>", summary)


@pytest.fixture
def result():
    return small_result()


@pytest.mark.parametrize(
    ("first_token", "final_norm", "array"),
    [(False, False, "mean_no_first"), (True, False, "mean"), (False, True, "normed_no_first"), (True, True, "normed")],
)
def test_the_summary_reads_the_chosen_array(result, first_token, final_norm, array):
    panel = LayerCosineExplorer(result, kind="a", text=2, first_token=first_token, final_norm=final_norm)
    values = getattr(result, array)["a"]
    trained, end = values[2, DEPTH], values[2, DEPTH * TIMES]
    # the text's index, its tokens, its cosine at the trained depth and at the end
    assert bold_numbers(panel.summary.value) == ["2", "12", f"{trained:.3f}", f"{end:.3f}"]
    summary = panel.summary.value
    assert f"layer {DEPTH})" in summary and f"layer {DEPTH * TIMES})" in summary
    assert f"a change of {end - trained:+.3f}" in summary
    kind_trained, kind_end = np.mean(values[:, DEPTH]), np.mean(values[:, DEPTH * TIMES])
    assert f"mean of the 4 a texts: {kind_trained:.3f} and {kind_end:.3f}" in summary
    assert panel.shown["trained"] == trained and panel.shown["end"] == end
    np.testing.assert_array_equal(panel.shown["curve"], values[2])


def test_the_summary_agrees_with_the_chapters_table(result):
    """The kind's mean in the summary is the table's "mean cosine" (first token left
    out) and its "with first token" column."""
    rows = {(row["text"], row["after"]): row for row in result.rows()}
    for first_token, column in ((False, "mean cosine"), (True, "with first token")):
        panel = LayerCosineExplorer(result, kind="b", text=1, first_token=first_token)
        trained = rows[("b (2)", f"trained depth ({DEPTH})")][column]
        end = rows[("b (2)", f"end ({DEPTH * TIMES})")][column]
        assert f"texts: {trained:.3f} and {end:.3f}" in panel.summary.value


def test_the_figure_draws_the_text_its_kind_and_the_pass_ends(result):
    panel = LayerCosineExplorer(result, kind="a", text=1)
    values = result.mean_no_first["a"]
    np.testing.assert_array_equal(panel._text_line.get_ydata(), values[1])
    np.testing.assert_allclose(panel._kind_line.get_ydata(), values.mean(axis=0))
    np.testing.assert_array_equal(panel._text_update.get_ydata(), result.update_ratio["a"][1, 1:])
    band = panel._band.get_paths()[0].vertices
    assert band[:, 1].min() == pytest.approx(values.min()) and band[:, 1].max() == pytest.approx(values.max())
    marked = sorted(line.get_xdata()[0] for line in panel.ax.lines if line.get_linestyle() in ("--", ":"))
    assert [DEPTH, DEPTH * TIMES] == [x for x in marked if x in (DEPTH, DEPTH * TIMES)]
    assert len(marked) == TIMES + 1  # the two pass ends and the kind's (dashed) mean
    assert panel.ax.get_xlabel().startswith("layer") and panel.ax.get_ylabel() == "mean pairwise cosine"


@pytest.mark.parametrize("name", ["kind", "text", "first_token", "final_norm"])
def test_every_control_changes_the_picture(result, name):
    panel = LayerCosineExplorer(result, kind="a", text=1)
    before, summary = shown_image(panel.output), panel.summary.value
    panel.controls[name].value = another_value(panel.controls[name])
    assert shown_image(panel.output) != before
    assert panel.summary.value != summary


def test_the_text_slider_follows_the_kind(result):
    panel = LayerCosineExplorer(result, kind="a", text=3)
    assert panel.controls["text"].max == 3
    panel.controls["kind"].value = "b"  # 2 texts: text 3 is lowered to 1
    assert panel.controls["text"].max == 1 and panel.controls["text"].value == 1
    assert panel.shown["kind"] == "b" and panel.shown["text"] == 1
    np.testing.assert_array_equal(panel.shown["curve"], result.mean_no_first["b"][1])
    panel.controls["kind"].value = "a"  # the range grows back, the text stays
    assert panel.controls["text"].max == 3 and panel.controls["text"].value == 1
    np.testing.assert_array_equal(panel.shown["curve"], result.mean_no_first["a"][1])


def test_a_kind_change_draws_once(result, monkeypatch):
    panel = LayerCosineExplorer(result, kind="a", text=3)
    drawn = []
    monkeypatch.setattr(panel, "_draw", lambda *args: drawn.append(args[:2]))
    panel.controls["kind"].value = "b"
    assert drawn == [("b", 1)]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        (dict(kind="c"), "kind"),
        (dict(kind="b", text=2), "text"),
        (dict(text=-1), "text"),
        (dict(text=1.0), "text"),
        (dict(text=True), "text"),
        (dict(first_token="yes"), "first_token"),
        (dict(final_norm=1), "final_norm"),
    ],
)
def test_bad_arguments_are_named(result, kwargs, name):
    with pytest.raises(ValueError, match=f"^{name} "):
        LayerCosineExplorer(result, **kwargs)


def test_a_result_without_the_final_norm_arrays_is_refused(result):
    result.normed = {}
    with pytest.raises(ValueError, match="result holds no normed"):
        LayerCosineExplorer(result)


def test_the_website_grid_offers_every_kind_and_both_checkboxes(result):
    grid = LayerCosineExplorer(result).WEBSITE_GRID
    assert grid == {"kind": ["a", "b"], "text": [0, 1], "first_token": [False, True], "final_norm": [False, True]}
    # a text the smaller kind lacks: offered, and so is where that kind lowers it
    assert LayerCosineExplorer(result, text=3).WEBSITE_GRID["text"] == [0, 1, 3]


def test_the_copy_shows_what_the_live_panel_draws(result):
    panel = LayerCosineExplorer(result, kind="a", text=3)
    grid = {"kind": ["a", "b"], "text": [0, 3], "first_token": [False, True]}
    with pytest.raises(ValueError, match="not a setting of the grid"):
        static_panels.static_panel(panel, grid)  # kind b lowers text 3 to 1, not in the grid
    grid["text"] = [0, 1, 3]
    copy = static_panels.static_panel(panel, grid)
    assert copy.duplicates() == []
    # b with text 3 is not a setting the live panel takes: 2 x 3 x 2 - 2
    assert len(copy.settings) == len(copy.images) == 10
    assert copy.image(dict(kind="b", text=3, first_token=True)) == copy.image(dict(kind="b", text=1, first_token=True))
    names, shown = static_panels.embedded_states(copy.html)
    assert names == ["kind", "text", "first_token"]
    for values in copy.settings:
        live = LayerCosineExplorer(result, kind="a", text=3)
        for name, value in values.items():  # control by control, as a reader would
            live.controls[name].value = value
        image, summary = shown[tuple(values[name] for name in names)]
        np.testing.assert_array_equal(pixels(image), pixels(shown_image(live.output)), err_msg=str(values))
        assert summary == live.summary.value
    # the copy was made by driving the panel, which is back where it was
    assert panel.values() == dict(kind="a", text=3, first_token=False, final_norm=False)
    assert html.escape("from 0 to the kind's last text (a: to 3, b: to 1)") in copy.html


def test_chapter_8_shows_the_panel_with_its_static_copy():
    text = (ROOT / "book" / "ch08_depth_clustering.md").read_text()
    assert "from lora_clusters.panels.depth import LayerCosineExplorer" in text
    assert "LayerCosineExplorer(result" in text and "with_static_copy(explorer)" in text
