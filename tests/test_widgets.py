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
    panel.controls["rank"].value = 12  # full rank in d = 12: many clusters
    assert panel.n_clusters >= 10 and panel.P_star_distance > 0.5
    panel.controls["n"].value = 8
    assert panel.trajectory.states.shape[1] == 8
    panel.controls["seed"].value = 3
    np.testing.assert_allclose(
        panel.trajectory.states[0], setups.initial_tokens(8, 12, seed=3, law="uniform", scale=5.0)
    )


def test_orthogonal_lora_explorer_responds_to_every_control():
    from lora_clusters import experiments
    from lora_clusters.widgets import OrthogonalLoRAExplorer

    panel = OrthogonalLoRAExplorer(log10_eps=-2.0, C=2.0, spread=0.5, V="I", seed=0)
    run = panel.run
    # the chapter's first run: two clusters split by sign, one pre-trained cluster
    expected = experiments.orthogonal_lora_run(C=2.0, eps=0.01, seed=0)
    np.testing.assert_array_equal(run.lora.final, expected.lora.final)
    assert run.split_by_sign and "<b>2</b> cluster(s)" in panel.summary.value
    # the view draws what the run holds: one path per token in each head
    assert len(panel.view.lora.get_segments()) == len(panel.view.pretrained.get_segments()) == 20
    np.testing.assert_array_equal(panel.view.lora.get_segments()[0][:, 1], run.along_v()[:, 0])

    panel.controls["log10_eps"].value = -1.0
    np.testing.assert_allclose(panel.run.off_line_distance()[0], 0.1)
    panel.controls["C"].value = 0.5
    assert np.abs(panel.run.along_v()[0]).min() >= 0.5 and np.abs(panel.run.along_v()[0]).max() <= 0.75
    panel.controls["spread"].value = 10.0
    assert np.abs(panel.run.along_v()[0]).max() > 0.75
    panel.controls["V"].value = "diag(3, 3, 1)"
    assert not np.allclose(panel.run.lora.final, expected.lora.final)
    before = panel.run.z0
    panel.controls["seed"].value = 4
    assert not np.allclose(panel.run.z0, before)


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


def test_panel_views_show_the_last_computed_data_and_keep_their_artists():
    # a panel keeps one figure and moves its artists' data: what it shows must be the
    # data it computed last, and moves must not pile up artists
    from lora_clusters import widgets

    phase = widgets.PhaseTransitionExplorer(log10_eps=-1.5, n=12, seed=3)
    stability = widgets.StabilityExplorer(log10_size=-3.0)
    low_rank = widgets.LowRankExplorer(d=3, n=10, seed=2)
    counts = {}
    for move in range(3):
        phase.controls["seed"].value = 4 + move
        stability.controls["rank"].value = 1 + move
        low_rank.controls["n"].value = 11 + move
        view, pair = phase.view, phase.pair
        np.testing.assert_array_equal(view.perturbed.get_offsets(), pair.perturbed.final)
        np.testing.assert_array_equal(view.reference.get_offsets(), pair.reference.final)
        np.testing.assert_array_equal(view.w2.get_xydata(), np.column_stack([pair.t, pair.w2]))
        assert view.T_delta.get_xdata()[0] == pair.T_delta
        assert view.T_star.get_visible() == bool(np.isfinite(pair.T_star))
        if np.isfinite(pair.T_star):
            assert view.T_star.get_xdata()[0] == pair.T_star and f"{pair.T_star:.1f}" in view.T_star_label.get_text()
        c = stability.comparison
        np.testing.assert_array_equal(stability.view.measured.get_ydata(), c.w2[c.w2 > 0])
        np.testing.assert_array_equal(stability.view.diameter.get_ydata(), c.bound.diameter)
        lo, hi = stability.view.ax.get_ylim()
        assert lo <= c.w2[c.w2 > 0].min() and hi >= c.bound.diameter.max()
        segments = low_rank.view.paths.get_segments()
        assert len(segments) == 11 + move
        np.testing.assert_array_equal(segments[0], low_rank.trajectory.states[:, 0, :2])
        np.testing.assert_array_equal(low_rank.view.end.get_offsets(), low_rank.trajectory.final[:, :2])
        now = {
            name: [len(ax.get_children()) for ax in panel.view.figure.axes]
            for name, panel in (("phase", phase), ("stability", stability), ("low_rank", low_rank))
        }
        assert counts in ({}, now)
        counts = now
