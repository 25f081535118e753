"""collate_pose: stacking; keypoints stay in input pixels."""
from __future__ import annotations

import pytest
import torch

from srpose_fast.data.collate import collate_pose


def _sample(i, k=17, size=(256, 192)):
    g = torch.Generator().manual_seed(i)
    return {
        "image": torch.randn(3, *size, generator=g), "keypoints": torch.rand(k, 2, generator=g) * 100,
        "target_weight": torch.ones(k), "visible": torch.ones(k), "center": torch.rand(2), "scale": torch.rand(2),
        "image_id": 10 + i, "box_score": 0.5, "area": 100.0, "index": i,
    }


def test_collate_shapes_and_dtypes():
    batch = [_sample(i) for i in range(3)]
    out = collate_pose(batch)
    assert out["image"].shape == (3, 3, 256, 192)
    assert out["keypoints"].shape == (3, 17, 2) and out["target_weight"].shape == (3, 17)
    assert out["visible"].shape == (3, 17) and out["center"].shape == (3, 2) and out["scale"].shape == (3, 2)
    assert out["image_id"].dtype == torch.int64 and out["image_id"].tolist() == [10, 11, 12]
    assert out["index"].tolist() == [0, 1, 2]
    assert out["box_score"].dtype == torch.float32 and out["area"].dtype == torch.float32
    assert torch.equal(out["keypoints"][1], batch[1]["keypoints"])  # input pixels, unchanged


def test_collate_keeps_input_pixels_and_heatmap_size_is_deprecated():
    batch = [_sample(i, k=14, size=(64, 48)) for i in range(2)]
    stacked = torch.stack([b["keypoints"] for b in batch])
    assert torch.equal(collate_pose(batch)["keypoints"], stacked)  # the model's codec converts them
    with pytest.warns(DeprecationWarning, match="heatmap_size"):
        out = collate_pose(batch, heatmap_size=(16, 24))  # the old conversion: H / 4, W / 2
    torch.testing.assert_close(out["keypoints"], stacked * torch.tensor([0.5, 0.25]))


def test_collate_with_a_dataloader(synthetic_set):
    from srpose_fast.data.coco import TopDownCocoDataset
    ann, prefix, _ = synthetic_set
    ds = TopDownCocoDataset(ann, prefix, input_size=(64, 48))
    loader = torch.utils.data.DataLoader(ds, batch_size=4, collate_fn=collate_pose)
    batch = next(iter(loader))
    assert batch["image"].shape == (4, 3, 64, 48) and batch["keypoints"].shape == (4, 17, 2)


def test_collate_empty_batch():
    with pytest.raises(ValueError, match="empty"):
        collate_pose([])
