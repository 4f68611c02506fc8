"""Drive the Chapter 1 panel as a reader would: move a control, check what it shows."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402

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
