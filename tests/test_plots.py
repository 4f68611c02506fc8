"""What the reader sees in the animations: every frame's axes have a real size and hold
the tokens (two animations once drew empty, squashed panels while the tests passed)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from lora_clusters import dynamics, setups  # noqa: E402
from lora_clusters.plots import particles  # noqa: E402


def _thin_cloud():
    # like Chapter 5's first animation: one coordinate spans 0.02, the other about 4
    rng = np.random.default_rng(0)
    t = np.linspace(0.0, 10.0, 30)
    start = np.column_stack([0.01 * rng.standard_normal(12), 4 * rng.uniform(-1, 1, 12)])
    states = start[None] * np.exp(-0.1 * t)[:, None, None]
    return t, {"thin cloud": states, "same, reflected": -states}


def _negative_eigenvalue_flow():
    # like Chapter 1's third animation: the rescaled tokens spread along e2
    x0 = setups.initial_tokens(20, 2, seed=5)
    I = np.eye(2)
    run = dynamics.simulate(x0, I, I, setups.value_matrix("negative eigenvalue", 2), t_max=15.0)
    return run.t, {"V: negative eigenvalue": run.states}


@pytest.mark.parametrize(
    "make, follow", [(_thin_cloud, False), (_negative_eigenvalue_flow, False), (_negative_eigenvalue_flow, True)]
)
def test_every_frame_shows_its_tokens_in_axes_of_real_size(make, follow):
    t, panels = make()
    fig, anim, axes = particles.token_animation(t, panels, frames=12, follow=follow)
    try:
        width, height = fig.get_size_inches() * fig.dpi
        for frame in range(12):
            anim._func(frame)
            fig.canvas.draw()
            for ax in axes:
                box = ax.get_window_extent()
                assert box.width > 0.5 * width / len(axes) and box.height > 0.5 * height, (frame, box)
                xy = ax.collections[0].get_offsets()
                (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
                assert np.all((xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)), frame
    finally:
        plt.close(fig)


def test_paths_that_fly_apart_keep_their_start_in_view():
    # a value matrix with eigenvalue -1 along e2 pushes the rescaled tokens thousands of
    # units apart: on linear axes the starting cloud shrank to a dot (ch01, Fig. 2)
    x0 = setups.initial_tokens(20, 2, seed=5)
    I = np.eye(2)
    run = dynamics.simulate(x0, I, I, setups.value_matrix("negative eigenvalue", 2, seed=5), t_max=15.0, dt=0.1)
    assert np.abs(run.final[:, 1]).max() > 100 * np.abs(x0).max()
    fig, ax = plt.subplots(figsize=(4, 4))
    particles.plot_paths(run.t, run.states, ax=ax)
    fig.canvas.draw()
    assert ax.get_yscale() == "symlog" and ax.get_xscale() == "linear"
    box = ax.get_window_extent()
    start = ax.transData.transform(x0)
    # the starting cloud spans a fifth of the box height at least, and every token is inside it
    assert np.ptp(start[:, 1]) > 0.2 * box.height
    assert np.all((start >= [box.x0, box.y0]) & (start <= [box.x1, box.y1]))
    end = ax.transData.transform(run.final[:, :2])
    assert np.all((end >= [box.x0, box.y0]) & (end <= [box.x1, box.y1]))
    # tokens that stay near their start keep linear, equal-aspect axes
    fig2, ax2 = plt.subplots()
    run2 = dynamics.simulate(x0, I, I, I, t_max=5.0, dt=0.1)
    particles.plot_paths(run2.t, run2.states, ax=ax2)
    assert ax2.get_yscale() == ax2.get_xscale() == "linear"
    plt.close(fig)
    plt.close(fig2)
