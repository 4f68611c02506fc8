"""Chapter 6's panel (lora_clusters.panels.toy): what it prints is what the run holds,
recomputed here from the weights; every control changes the picture; its website copy
is the live panel's pictures; bad input is refused by name."""

import io

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from lora_clusters import scale, static_panels  # noqa: E402
from lora_clusters.nets import toy  # noqa: E402
from lora_clusters.panels.base import another_value, shown_image  # noqa: E402
from lora_clusters.panels.toy import ForgettingExplorer  # noqa: E402
from panel_data import toy_runs  # noqa: E402


@pytest.fixture(scope="module")
def runs():
    torch.set_num_threads(1)
    return toy_runs()


def _numbers(html: str) -> list[float]:
    import re

    return [float(x) for x in re.findall(r"<b>([-0-9.]+)</b>", html)]


def test_summary_is_the_run_recomputed_from_the_weights(runs):
    panel = ForgettingExplorer(runs, run="lr 1e-2", depth=2, seed=1)
    run = runs["lr 1e-2"][2]
    # forgetting epoch: the first epoch where the addition accuracy is below 1/2
    below = np.flatnonzero(run.add_acc[:, 1] < 0.5)
    numbers = _numbers(panel.summary.value)
    if below.size:
        assert numbers[0] == below[0]
        numbers = numbers[1:]
    else:
        assert "stays at or above" in panel.summary.value
        numbers = numbers[1:]
    # printed to two decimals (0.125 prints as 0.12: a tolerance of 0.005 sits on the edge)
    assert numbers[0] == float(f"{run.add_acc[-1, 1]:.2f}")
    assert numbers[1] == float(f"{run.sub_test_acc[-1, 1]:.2f}")
    # the relative update and the outliers, from the weights of model 1
    P = {k: v[1].double().numpy() for k, v in run.pretrained.stack.params.items()}
    delta = run.scaling * run.lora_B[1].double().numpy() @ run.lora_A[1].double().numpy()
    relative = np.linalg.norm(P["output"] @ delta) / np.linalg.norm(P["output"] @ P["value"])
    assert numbers[2] == pytest.approx(relative, abs=0.0005)
    radius = np.abs(np.linalg.eigvals(P["output"] @ P["value"])).max()
    after = np.abs(np.linalg.eigvals(P["output"] @ (P["value"] + delta)))
    assert numbers[3] == (after > radius * (1 + 1e-9)).sum()
    assert f"radius {radius:.2f}" in panel.summary.value


def test_every_control_changes_the_picture(runs):
    panel = ForgettingExplorer(runs)
    for name, control in panel.controls.items():
        before = shown_image(panel.output)
        control.value = another_value(control)
        assert shown_image(panel.output) not in (None, before), name


def test_website_copy_is_the_live_panel(runs):
    panel = ForgettingExplorer(runs)
    copy = static_panels.static_panel(panel)
    assert len(copy.settings) == 2 * 2 * 2 and copy.duplicates() == []
    live = ForgettingExplorer(runs)
    for values in copy.settings[::3]:
        for name, value in values.items():
            live.controls[name].value = value
        shown = np.asarray(Image.open(io.BytesIO(shown_image(live.output))).convert("RGBA"))
        kept = np.asarray(Image.open(io.BytesIO(copy.image(values))).convert("RGBA"))
        np.testing.assert_array_equal(kept, shown, err_msg=str(values))
    # the depth is a slider on the page as in JupyterLab
    assert [c.kind for c in copy.controls] == ["select", "range", "range"]


@pytest.mark.parametrize(
    "kwargs, name",
    [({"run": "lr 1"}, "run"), ({"depth": 3}, "depth"), ({"seed": 2}, "seed"), ({"seed": -1}, "seed")],
)
def test_bad_arguments_are_named(runs, kwargs, name):
    with pytest.raises(ValueError, match=name):
        ForgettingExplorer(runs, **kwargs)


def test_runs_of_different_shapes_are_refused(runs):
    with pytest.raises(ValueError, match="same depths"):
        ForgettingExplorer({"a": runs["lr 1e-3"], "b": {1: runs["lr 1e-2"][1]}})
    with pytest.raises(ValueError, match="runs must be a non-empty dict"):
        ForgettingExplorer({})


def test_one_model_per_depth_has_no_seed_control():
    # the smoke scale trains one seed: a seed slider would have nothing to choose
    config = scale.settings("toy", "smoke", depths=(1,))
    runs = {"one": {1: toy.finetune(toy.pretrain(config, 1, seeds=(0,)))}}
    panel = ForgettingExplorer(runs)
    assert list(panel.controls) == ["run", "depth"] and "seed" not in panel.WEBSITE_GRID
    assert shown_image(panel.output) is not None and "epoch" in panel.summary.value
