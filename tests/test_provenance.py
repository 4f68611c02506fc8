"""The provenance record each chapter writes, and its round trip through a notebook."""

import json

import numpy as np
import pytest

from lora_clusters import dynamics, provenance, setups


def test_environment_names_the_device_and_the_installed_versions():
    import numpy

    info = provenance.environment("abc123")
    assert info["lib_fingerprint"] == "abc123"
    assert info["packages"]["numpy"] == numpy.__version__
    assert info["device"].startswith(("CPU: ", "GPU: "))
    assert provenance.package_versions(["surely-not-a-package-xyz"]) == {"surely-not-a-package-xyz": "not installed"}


def test_record_is_found_again_in_an_executed_notebook_written_to_json():
    info = provenance.environment("f00d")
    nb = {"cells": [{"cell_type": "markdown", "source": "x"},
                    {"cell_type": "code", "outputs": [{"output_type": "display_data", "metadata": {},
                                                       "data": {provenance.MIME: info, "text/plain": "..."}}]}]}
    assert provenance.find_record(json.loads(json.dumps(nb))) == info
    assert provenance.find_record({"cells": [{"cell_type": "code", "outputs": []}]}) is None


def test_select_picks_one_member_of_a_batched_trajectory():
    x0 = setups.initial_tokens(6, 2, seed=0)
    I = np.eye(2)
    Vs = np.stack([I, 0.5 * I])
    batch = dynamics.simulate(x0, I, I, Vs, t_max=2.0, dt=0.1)
    alone = dynamics.simulate(x0, I, I, 0.5 * I, t_max=2.0, dt=0.1)
    assert batch.select(1).states.shape == alone.states.shape
    assert abs(batch.select(1).states - alone.states).max() < 1e-12
    with pytest.raises(ValueError, match="batched"):
        alone.select(0)
    with pytest.raises(IndexError, match="out of range"):
        batch.select(2)
