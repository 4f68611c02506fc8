"""The provenance record each chapter writes, and its round trip through a notebook."""

import json

from lora_clusters import provenance


def test_environment_names_the_device_and_the_installed_versions():
    import numpy

    info = provenance.environment("abc123")
    assert info["lib_fingerprint"] == "abc123"
    assert info["packages"]["numpy"] == numpy.__version__
    assert info["device"].startswith(("CPU: ", "GPU: "))
    assert "scale" not in info  # the stored results record it (chapters 1-5 have none)
    assert set(info["modules"]) >= {"lora_clusters.dynamics", "lora_clusters.provenance"}
    assert provenance.package_versions(["surely-not-a-package-xyz"]) == {"surely-not-a-package-xyz": "not installed"}


def test_record_is_found_again_in_an_executed_notebook_written_to_json():
    info = provenance.environment("f00d")
    nb = {
        "cells": [
            {"cell_type": "markdown", "source": "x"},
            {
                "cell_type": "code",
                "outputs": [
                    {
                        "output_type": "display_data",
                        "metadata": {},
                        "data": {provenance.MIME: info, "text/plain": "..."},
                    }
                ],
            },
        ]
    }
    assert provenance.find_record(json.loads(json.dumps(nb))) == info
    assert provenance.find_record({"cells": [{"cell_type": "code", "outputs": []}]}) is None
