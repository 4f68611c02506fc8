"""The plain-text tables chapters print, and the verdict Chapter 6 draws from its data."""

from types import SimpleNamespace

import numpy as np
import pytest

from lora_clusters import report


def test_table_aligns_columns_and_formats_numbers():
    rows = [
        {"depth": 2, "acc": np.float32(0.28865978), "eig": np.complex128(1 - 2j), "ok": np.bool_(True)},
        {"depth": 10, "acc": 1.0, "eig": 0.5 + 0j, "ok": False},
    ]
    lines = str(report.table(rows)).splitlines()
    assert lines[0].split() == ["depth", "acc", "eig", "ok"]
    assert lines[1].split() == ["2", "0.289", "1.000-2.000i", "True"]
    assert lines[2].split() == ["10", "1", "0.500", "False"]
    assert len({len(line) for line in lines}) == 1  # right-aligned to common widths
    assert str(report.table([])) == "(no rows)"


def test_table_shows_as_an_html_table_with_the_same_cells():
    import html.parser

    rows = [
        {"depth": 2, "verdict <ok>": "holds", "acc": 0.28865978},
        {"depth": 10, "verdict <ok>": "fails", "acc": 1.0},
    ]

    class Cells(html.parser.HTMLParser):
        def __init__(self):
            super().__init__()
            self.cells, self.classes, self.tables = [], [], []

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "table":
                self.tables.append(attrs.get("class"))
            if tag in ("td", "th"):
                self.classes.append(attrs.get("class"))

        def handle_data(self, data):
            self.cells.append(data)

    parsed = Cells()
    parsed.feed(report.table(rows)._repr_html_())
    assert parsed.tables == ["lora-table"]
    # the header (escaped and back), then the rows, as the text table shows them
    assert parsed.cells == ["depth", "verdict <ok>", "acc", "2", "holds", "0.289", "10", "fails", "1"]
    # numbers are right-aligned columns, text left-aligned
    assert parsed.classes[:3] == ["num", "text", "num"]


def _runs(epochs_by_depth, horizon=400):
    """Fine-tuning runs that only know their forgetting epochs (and their length)."""
    return {
        d: SimpleNamespace(
            forgetting_epoch=lambda level, e=e: np.array(e, dtype=float), add_acc=np.zeros((horizon + 1, len(e)))
        )
        for d, e in epochs_by_depth.items()
    }


def test_depth_verdict_reads_every_run_and_ranks_never_forgotten_runs_last():
    pytest.importorskip("torch")
    from lora_clusters.nets import toy_depth

    slower = toy_depth.depth_verdict(_runs({2: [100, 120, 110], 4: [150, 160, 170], 8: [300, 280, 290]}))
    assert slower.direction() == "slower" and slower.spearman()[0] > 0.9 and slower.horizon == 400
    faster = toy_depth.depth_verdict(_runs({2: [300, 280, 290], 4: [150, 160, 170], 8: [100, 120, 110]}))
    assert faster.direction() == "faster" and faster.spearman()[0] < -0.9
    # a run that never forgot ranks after every finite epoch (filled at horizon + 1)
    censored = toy_depth.depth_verdict(_runs({2: [100, 100, 100], 4: [200, 200, np.inf]}, horizon=300))
    np.testing.assert_array_equal(censored._filled()[1], [200, 200, 301])
