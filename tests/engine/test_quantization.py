import json

import pytest
import torch

from srpose_fast.data import generate_synthetic_coco
from srpose_fast.engine.quantization import quantization_markdown, quantization_table, write_quantization

SIZES = ("64x48", "128x96", "256x192")
DECODERS = ("argmax", "shift", "dark")


pytestmark = pytest.mark.usefixtures("single_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def ann_file(tmp_path_factory):
    """8 synthetic images (16 persons)."""
    return generate_synthetic_coco(tmp_path_factory.mktemp("synthetic_quant"), num_images=8, split="val", seed=7,
                                   progress=False)


@pytest.fixture(scope="module")
def table(ann_file):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return quantization_table(ann_file)
    finally:
        torch.set_num_threads(threads)


def test_table_layout_and_ordering(table):
    assert list(table) == list(SIZES)
    for row in table.values():
        assert list(row) == list(DECODERS)
        assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in row.values())
    assert table["64x48"]["dark"] >= table["64x48"]["argmax"]
    assert table["256x192"]["argmax"] >= table["64x48"]["argmax"]
    # The quantization error is there at 64x48 on this set, and gone at 256x192.
    assert table["64x48"]["argmax"] < 0.99
    assert table["256x192"]["argmax"] > 0.99


def test_msra_targets_leave_nothing_for_the_refinements(table):
    # MSRA Gaussians are centred on a pixel and symmetric: shift never moves, DARK's step is ~0.
    for row in table.values():
        assert row["shift"] == row["argmax"]
        assert row["dark"] == pytest.approx(row["argmax"], abs=1e-3)


def test_unbiased_targets_separate_the_decoders(ann_file):
    low = quantization_table(ann_file, sizes=((16, 12), (32, 24)), target="unbiased")
    for row in low.values():
        assert row["argmax"] < row["shift"] < row["dark"]
    assert low["16x12"]["argmax"] < low["32x24"]["argmax"]
    msra = quantization_table(ann_file, sizes=((16, 12),), decoders=("argmax",))
    assert list(msra) == ["16x12"] and list(msra["16x12"]) == ["argmax"]
    assert msra["16x12"]["argmax"] < 0.7  # a 16x12 map loses most of the AP


def test_write_quantization(table, tmp_path, capsys):
    paths = write_quantization(table, tmp_path / "q")
    assert json.loads((tmp_path / "q" / "quantization.json").read_text()) == table
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert printed == quantization_markdown(table) == paths["md"].read_text()
    assert "| 64x48 |" in printed and "| heatmap | argmax | shift | dark |" in printed


def test_bad_inputs(ann_file, tmp_path):
    with pytest.raises(ValueError, match="target"):
        quantization_table(ann_file, target="gaussian")
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"images": [], "annotations": []}))
    with pytest.raises(ValueError, match="no person"):
        quantization_table(empty)
