"""Drive the Chapter 1 panel as a reader would: move a control, check what it shows."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from lora_clusters import measures, setups  # noqa: E402
from lora_clusters.widgets import DynamicsExplorer  # noqa: E402


def test_dynamics_explorer_responds_to_every_control():
    panel = DynamicsExplorer(n=12, seed=2, t_max=10.0, V="identity")
    first = panel.trajectory
    assert first.states.shape[1:] == (12, 2) and first.rescaled
    np.testing.assert_allclose(first.states[0], setups.initial_tokens(12, 2, seed=2))
    k = len(measures.cluster_centers(first.final, tol=1e-2))
    assert f"<b>{k}</b>" in panel.summary.value

    panel.controls["n"].value = 30
    assert panel.trajectory.states.shape[1] == 30

    panel.controls["seed"].value = 7
    np.testing.assert_allclose(panel.trajectory.states[0], setups.initial_tokens(30, 2, seed=7))

    # a negative eigenvalue pushes the rescaled tokens apart along e2: |z_2| grows like e^{1.5 t}
    bounded = np.abs(panel.trajectory.final[:, 1]).max()
    panel.controls["V"].value = "negative eigenvalue"
    assert np.abs(panel.trajectory.final[:, 1]).max() > 100 * bounded

    panel.controls["t_max"].value = 5.0
    assert abs(panel.trajectory.t[-1] - 5.0) < 0.05

    panel.controls["rescaled"].value = False
    assert not panel.trajectory.rescaled and panel.trajectory.t[-1] <= 8.0 + 1e-9


def test_stability_explorer_responds_to_every_control():
    from lora_clusters.widgets import StabilityExplorer

    panel = StabilityExplorer(log10_size=-3.0, rank=1, target="V", radius=0.2, t_max=2.0)
    first = panel.comparison
    assert first.holds and "True" in panel.summary.value
    assert np.isclose(first.bound.R_t[0], 0.2)

    # ten times larger update: the measured distance grows ten-fold (linear regime)
    panel.controls["log10_size"].value = -2.0
    np.testing.assert_allclose(panel.comparison.w2[-1] / first.w2[-1], 10.0, rtol=0.05)

    # perturbing A instead of V: the bound's prefactor is linear in the size, W2 different
    before = panel.comparison.w2[-1]
    panel.controls["target"].value = "A"
    assert panel.comparison.holds and not np.isclose(panel.comparison.w2[-1], before)
    assert np.isclose(panel.comparison.bound.prefactor[0], 4 * 0.2**3 * 1e-2)

    assert np.linalg.matrix_rank(panel.triple[0] - np.eye(3), tol=1e-10) == 1
    panel.controls["rank"].value = 3
    assert np.linalg.matrix_rank(panel.triple[0] - np.eye(3), tol=1e-10) == 3

    panel.controls["radius"].value = 0.5
    assert np.isclose(panel.comparison.bound.R_t[0], 0.5)

    panel.controls["t_max"].value = 4.0
    assert np.isclose(panel.comparison.t[-1], 4.0)


def test_phase_transition_explorer_responds_to_every_control():
    from lora_clusters.widgets import PhaseTransitionExplorer

    panel = PhaseTransitionExplorer(log10_eps=-2.0, n=20, seed=5)
    T_small = panel.pair.T_star
    assert np.isfinite(T_small) and f"{T_small:.1f}" in panel.summary.value
    np.testing.assert_allclose(panel.pair.reference.states[0], setups.initial_tokens(20, 2, seed=5))

    # T* scales like 1/eps: ten times larger eps, about ten times earlier exit
    panel.controls["log10_eps"].value = -1.0
    np.testing.assert_allclose(panel.pair.T_star * 0.1, T_small * 0.01, rtol=0.1)

    panel.controls["n"].value = 30
    assert panel.pair.perturbed.states.shape[1:] == (30, 2)

    panel.controls["seed"].value = 7
    np.testing.assert_allclose(panel.pair.perturbed.states[0], setups.initial_tokens(30, 2, seed=7))


def test_low_rank_explorer_responds_to_every_control():
    from lora_clusters.widgets import LowRankExplorer

    panel = LowRankExplorer(rank=1, d=2, n=20, seed=1)
    assert panel.n_clusters == 2 and panel.P_star_distance < 1e-12 and "<b>2</b>" in panel.summary.value
    panel.controls["d"].value = 12
    assert panel.trajectory.states.shape[-1] == 12 and panel.n_clusters == 2
    panel.controls["rank"].value = 12                       # full rank in d = 12: many clusters
    assert panel.n_clusters >= 10 and panel.P_star_distance > 0.5
    panel.controls["n"].value = 8
    assert panel.trajectory.states.shape[1] == 8
    panel.controls["seed"].value = 3
    np.testing.assert_allclose(panel.trajectory.states[0], setups.initial_tokens(8, 12, seed=3, law="uniform", scale=5.0))


def test_panel_figure_lives_in_the_output_widget_and_changes_with_a_move():
    from lora_clusters import widgets

    panel = widgets.LowRankExplorer(d=2, n=12, seed=3)
    before = widgets.shown_image(panel.output)
    assert before is not None and before[:8] == b"\x89PNG\r\n\x1a\n"
    panel.controls["seed"].value = widgets.another_value(panel.controls["seed"])
    assert widgets.shown_image(panel.output) not in (None, before)
    assert len(panel.output.outputs) == 1  # replaced, not appended


def test_another_value_is_valid_and_different():
    import ipywidgets as W

    from lora_clusters.widgets import another_value

    slider = W.FloatSlider(value=-2.0, min=-4.0, max=-1.0, step=0.25)
    new = another_value(slider)
    assert new != slider.value and slider.min <= new <= slider.max and (new - slider.min) / slider.step % 1 == 0
    ints = W.IntSlider(value=95, min=2, max=100)
    assert another_value(ints) == round(95 - 98 / 4)
    assert another_value(W.Dropdown(options=["a", "b", "c"], value="c")) == "a"
    assert another_value(W.Checkbox(value=False)) is True
    with pytest.raises(TypeError, match="control must be"):
        another_value(W.HTML())
