"""Chapter 9's panel (lora_clusters.panels.lm_lora) on runs with known eigenvalues: it
prints the largest modulus, its layer and the complex count of the chosen checkpoint;
every control changes the picture; its website copy is the live panel's pictures."""

import io
import re

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from lora_clusters import static_panels  # noqa: E402
from lora_clusters.panels.base import another_value, shown_image  # noqa: E402
from lora_clusters.panels.lm_lora import UpdateEigenvaluesExplorer  # noqa: E402
from panel_data import CHECKPOINTS, lm_run  # noqa: E402


@pytest.fixture(scope="module")
def runs():
    return [lm_run(0), lm_run(1)]


def test_summary_reads_the_chosen_checkpoint(runs):
    panel = UpdateEigenvaluesExplorer(runs, seed=1, step=10)
    eigenvalues = runs[1].ov_eigenvalues[2]
    moduli = np.abs(eigenvalues).max(axis=1)
    text = panel.summary.value
    numbers = [float(x) for x in re.findall(r"<b>([-0-9.e+]+)</b>", text)]
    # step, accuracy at that checkpoint, largest modulus, its layer, complex eigenvalues
    assert numbers[0] == 10 and numbers[1] == pytest.approx(0.8)
    assert numbers[2] == pytest.approx(moduli.max(), rel=1e-3) and numbers[3] == moduli.argmax()
    assert numbers[4] == 2 and "of 8" in text
    assert "(30 examples)" in text  # 10 steps of 3 examples
    assert panel.shown["top_layer"] == moduli.argmax()
    panel.controls["step"].value = 0
    assert f"<b>{runs[1].accuracy_before:.3f}</b>" in panel.summary.value and "before training" in panel.summary.value


def test_every_control_changes_the_picture(runs):
    panel = UpdateEigenvaluesExplorer(runs, step=5)
    for name, control in panel.controls.items():
        before = shown_image(panel.output)
        control.value = another_value(control)
        assert shown_image(panel.output) not in (None, before), name


def test_website_copy_is_the_live_panel(runs):
    panel = UpdateEigenvaluesExplorer(runs)
    copy = static_panels.static_panel(panel)
    assert len(copy.settings) == 2 * CHECKPOINTS.size and copy.duplicates() == []
    live = UpdateEigenvaluesExplorer(runs)
    for values in copy.settings[::3]:
        for name, value in values.items():
            live.controls[name].value = value
        shown = np.asarray(Image.open(io.BytesIO(shown_image(live.output))).convert("RGBA"))
        kept = np.asarray(Image.open(io.BytesIO(copy.image(values))).convert("RGBA"))
        np.testing.assert_array_equal(kept, shown, err_msg=str(values))


def test_bad_arguments_are_named(runs):
    with pytest.raises(ValueError, match="seed"):
        UpdateEigenvaluesExplorer(runs, seed=7)
    with pytest.raises(ValueError, match="step"):
        UpdateEigenvaluesExplorer(runs, step=7)
    with pytest.raises(ValueError, match="runs"):
        UpdateEigenvaluesExplorer([])
    other = lm_run(2)
    other.checkpoints = np.array([0, 5, 10, 16])
    with pytest.raises(ValueError, match="checkpoints"):
        UpdateEigenvaluesExplorer([runs[0], other])
