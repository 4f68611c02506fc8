"""Chapter 7's panel (lora_clusters.panels.spectra): its summary states what an independent
eigendecomposition of W_O^h W_V^h says, every control moves the picture, the layer and
head sliders follow the model, bad arguments are refused by name, and its static copy
shows what the live panel draws.  Two small random models keep this quick."""

import io

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from lora_clusters import static_panels  # noqa: E402
from lora_clusters.panels.base import another_value, shown_image  # noqa: E402
from lora_clusters.panels.spectra import HeadSpectraExplorer  # noqa: E402
from panel_data import head_spectra_of_two_models  # noqa: E402


@pytest.fixture(scope="module")
def spectra():
    return head_spectra_of_two_models()


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))


def _direct(weights, layer, h):
    """Thm 5.4's numbers for one head, from the d x d matrices (numpy's eig, sliced by hand)."""
    dh, g = weights.head_dim, h // (weights.n_heads // weights.n_kv_heads)
    W_Q = weights.query[layer][h * dh : (h + 1) * dh]
    W_K = weights.key[layer][g * dh : (g + 1) * dh]
    W_V = weights.value[layer][g * dh : (g + 1) * dh]
    W_O = weights.output[layer][:, h * dh : (h + 1) * dh]
    eigenvalues, vectors = np.linalg.eig(W_O @ W_V)
    order = np.argsort(-np.abs(eigenvalues), kind="stable")
    top, second = eigenvalues[order[0]], abs(eigenvalues[order[1]])
    phi = np.real(vectors[:, order[0]])
    c11 = (W_Q @ phi) @ (W_K @ phi) / np.sqrt(dh)  # its sign does not depend on phi's scale
    real_positive = abs(top.imag) <= 1e-12 and top.real > 0
    holds = real_positive and top.real - second > 1e-9 * abs(top) and c11 > 0
    return top, second, real_positive, bool(holds)


def _set(panel, **values):
    for name, value in values.items():
        panel.controls[name].value = value


def test_the_summary_states_what_a_direct_eigendecomposition_says(spectra):
    panel = HeadSpectraExplorer(spectra)
    verdicts = set()
    for name, spec in spectra.items():
        w = spec.weights
        for layer in range(w.n_layers):
            direct = [_direct(w, layer, h) for h in range(w.n_heads)]
            holding = sum(d[3] for d in direct)
            real_positive = sum(d[2] for d in direct)
            # the chapter's table says the same of the layer
            assert spec.rows()[layer]["Thm 5.4 holds"] == f"{holding}/{w.n_heads}"
            for h, (top, second, is_real_positive, holds) in enumerate(direct):
                _set(panel, model=name, layer=layer, head=h)
                text = panel.summary.value
                assert text.startswith(f"{name}, layer {layer}, head {h}:"), text
                is_real = abs(top.imag) <= 1e-12
                shown_top = f"{top.real:.4g}" if is_real else f"{top.real:.4g} ± {abs(top.imag):.4g}i"
                assert f"λ<sub>1</sub> = <b>{shown_top}</b>" in text, text
                assert f"|λ<sub>2</sub>| = <b>{second:.4g}</b>" in text, text
                assert ("hypotheses <b>hold</b>" in text) is holds, text
                assert ("hypotheses <b>fail</b>" in text) is not holds, text
                assert f"<b>{holding}</b> of {w.n_heads} heads meet them" in text, text
                assert f"<b>{real_positive}</b> of {w.n_heads}" in text, text
                if is_real_positive:
                    gap = 100 * (top.real - second) / top.real
                    assert f"relative gap {gap:.3g}%" in text, text
                np.testing.assert_allclose(np.sort_complex(panel.shown["eigenvalues"]), _nonzero(w, layer, h))
                verdicts.add(panel.shown["verdict"])
    # the random models hold heads of every kind: the checks above saw each verdict
    assert verdicts == {0, 1, 2}


def _nonzero(weights, layer, h):
    """The d_h eigenvalues of largest modulus of W_O^h W_V^h, by numpy, sorted."""
    f = weights.head(layer, h)
    eigenvalues = np.linalg.eigvals(f["W_O"] @ f["W_V"])
    largest = eigenvalues[np.argsort(-np.abs(eigenvalues))[: weights.head_dim]]
    return np.sort_complex(largest)


def test_every_control_changes_the_picture(spectra):
    panel = HeadSpectraExplorer(spectra, model="big", layer=1, head=1)
    for name, control in panel.controls.items():
        before, summary = shown_image(panel.output), panel.summary.value
        control.value = another_value(control)
        assert shown_image(panel.output) != before, name
        assert panel.summary.value != summary, name
    # the head alone moves the complex plane (left, below the title), not only the titles
    panel = HeadSpectraExplorer(spectra, model="big", layer=2, head=0)
    plane = pixels(shown_image(panel.output))[40:, :230]
    panel.controls["head"].value = 3
    assert not np.array_equal(pixels(shown_image(panel.output))[40:, :230], plane)


def test_the_sliders_follow_the_model(spectra):
    panel = HeadSpectraExplorer(spectra, model="big", layer=3, head=3)
    drawn = []
    original = panel._draw
    panel._draw = lambda *args: (drawn.append(args[1:]), original(*args))
    panel.controls["model"].value = "small"
    # lowered to the small model's last layer and head, drawn once, for the small model
    assert panel.values() == {"model": "small", "layer": 1, "head": 2}
    assert (panel.controls["layer"].max, panel.controls["head"].max) == (1, 2)
    assert drawn == [("small", 1, 2)]
    fresh = HeadSpectraExplorer(spectra, model="small", layer=1, head=2)
    np.testing.assert_array_equal(pixels(shown_image(panel.output)), pixels(shown_image(fresh.output)))
    assert panel.summary.value == fresh.summary.value
    panel.controls["model"].value = "big"
    assert (panel.controls["layer"].max, panel.controls["head"].max) == (3, 3)
    assert panel.values() == {"model": "big", "layer": 1, "head": 2}
    panel.controls["layer"].value = 3
    assert panel.summary.value.startswith("big, layer 3, head 2:")


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        (dict(model="large"), "model"),
        (dict(model="big", layer=4), "layer"),
        (dict(model="small", layer=-1), "layer"),
        (dict(model="big", layer=1.0), "layer"),
        (dict(model="big", layer=True), "layer"),
        (dict(model="small", head=3), "head"),
        (dict(model="big", head="0"), "head"),
    ],
)
def test_bad_arguments_are_refused_by_name(spectra, kwargs, named):
    with pytest.raises(ValueError, match=f"^{named} must be"):
        HeadSpectraExplorer(spectra, **kwargs)


@pytest.mark.parametrize("bad", [{}, [], {"big": "not spectra"}])
def test_spectra_must_be_a_dict_of_head_spectra(bad):
    with pytest.raises(ValueError, match=r"^spectra"):
        HeadSpectraExplorer(bad)


def test_the_website_grid_offers_each_models_first_and_last_and_the_start(spectra):
    panel = HeadSpectraExplorer(spectra, model="big", layer=2, head=1)
    grid = panel.WEBSITE_GRID
    assert grid["model"] == ["big", "small"]
    assert {0, 1, 2, 3} <= set(grid["layer"]) and set(grid["layer"]) <= set(range(4))
    assert {0, 1, 2, 3} <= set(grid["head"]) and set(grid["head"]) <= set(range(4))
    panel = HeadSpectraExplorer(spectra, model="small", layer=0, head=0)
    assert {0, 1, 3} <= set(panel.WEBSITE_GRID["layer"]) and {0, 2, 3} <= set(panel.WEBSITE_GRID["head"])


def test_the_static_copy_shows_what_the_live_panel_draws(spectra):
    panel = HeadSpectraExplorer(spectra, model="big", layer=0, head=0)
    grid = {"model": ["big", "small"], "layer": [0, 1, 3], "head": [0, 2]}
    copy = static_panels.static_panel(panel, grid)
    assert copy.duplicates() == []
    assert len(copy.settings) == 2 * 3 * 2 - 2  # the small model has no layer 3
    # a setting the live panel cannot take shows where its slider stops
    for head in (0, 2):
        assert copy.image({"model": "small", "layer": 3, "head": head}) == copy.image(
            {"model": "small", "layer": 1, "head": head}
        )
    names, embedded = static_panels.embedded_states(copy.html)
    assert names == ["model", "layer", "head"]
    for values in copy.settings:
        live = HeadSpectraExplorer(spectra, model="big", layer=0, head=0)
        _set(live, **values)
        assert live.values() == values
        image, summary = embedded[tuple(values[name] for name in names)]
        np.testing.assert_array_equal(pixels(image), pixels(shown_image(live.output)), err_msg=str(values))
        assert summary == live.summary.value == copy.summary(values)
    # the panel the copy drove is back where it was
    assert panel.values() == {"model": "big", "layer": 0, "head": 0}
