"""Bottom-up evaluation: every image of a data set, all its people, COCO keypoint AP without boxes.

As the original (mmpose 0.x BottomUp.forward_test + BottomUpCocoDataset.evaluate, SPEC.md section 6): one
image at a time (batch 1, scale 1), resized by the test-time rule, flip test as asked, decoded by the
model's codec; every person is a result with the decode's person score; no rescoring and no OKS-NMS; all
images of the file count (those without people too). The keypoint scores written are the heatmap values
where the original writes 1.0: COCO's AP reads only x and y, and a result is dropped only when all its
keypoint scores are <= 0, which no person has (each has a grouped joint above the detection threshold).
"""
from __future__ import annotations

import warnings

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..codecs.bottomup_decode import BottomUpPoses
from ..data.bottomup_resize import bottomup_resize
from .coco_metrics import STAT_NAMES, keypoint_results
from .scoring import benchmark_of, score_results, write_scores


class _ResizedImages(Dataset):
    """The evaluation samples of a bottom-up data set, resized for the network (in the loader's workers)."""

    def __init__(self, dataset, input_size: int):
        self.dataset, self.input_size = dataset, input_size

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        sample = self.dataset[index]
        inputs, geometry = bottomup_resize(sample["image"], self.input_size)
        return {"image": torch.from_numpy(inputs)[None], "center": geometry.center, "scale": geometry.scale,
                "image_id": int(sample["image_id"])}


@torch.no_grad()
def predict_dataset_bottomup(model, dataset, *, flip_test: bool = True, backend: str = "auto", progress: bool = True,
                             num_workers: int = 0) -> list[tuple[int, BottomUpPoses]]:
    """(image_id, people) of each image in data set order; `dataset` yields bottom-up evaluation samples
    (uint8 RGB `image`, `image_id`), e.g. `data.bottomup.BottomUpCocoDataset(..., train=False)`."""
    loader = DataLoader(_ResizedImages(dataset, model.codec.input_size), batch_size=None, num_workers=num_workers)
    device = next(model.parameters()).device
    out = []
    for sample in tqdm(loader, desc="evaluate (bottom-up)", unit="img", disable=not progress):
        poses = model.predict(sample["image"].to(device), flip_test=flip_test, center=sample["center"],
                              scale=sample["scale"], backend=backend)[0]
        out.append((sample["image_id"], poses))
    return out


def people_results(predictions: list[tuple[int, BottomUpPoses]]) -> list[dict]:
    """COCO keypoint results, one per person, images and people in order."""
    people = [(image_id, poses) for image_id, poses in predictions if len(poses)]
    if not people:
        return []
    return keypoint_results(np.concatenate([np.full(len(p), i) for i, p in people]),
                            np.concatenate([p.keypoints for _, p in people]),
                            np.concatenate([p.keypoint_scores for _, p in people]),
                            np.concatenate([p.scores for _, p in people]))


def evaluate_bottomup(model, dataset, *, flip_test: bool = True, backend: str = "auto", out_dir=None,
                      progress: bool = True, num_workers: int = 0) -> dict[str, float]:
    """The data set's benchmark statistics (COCO's AP, AP50, ..., ARl; CrowdPose's with its crowd index)
    of a bottom-up model (`model.kind == "bottom_up"`: `codec`, `keypoint_set`, `predict`).

    With out_dir: keypoints_results.json (every person), metrics.json and metrics.md, written atomically.
    No person in any image scores 0 everywhere (the original's rule for an empty result file).
    """
    kset = dataset.keypoint_set
    if model.keypoint_set.num_keypoints != kset.num_keypoints:
        raise ValueError(f"the model predicts {model.keypoint_set.num_keypoints} keypoints "
                         f"({model.keypoint_set.name}), the data set has {kset.num_keypoints} ({kset.name})")
    if len(dataset) == 0:
        raise ValueError(f"nothing to evaluate: {dataset.ann_file} has no images")
    benchmark = benchmark_of(dataset)
    if benchmark == "mpii":
        raise ValueError("MPII's PCKh scores one prediction per annotated person; bottom-up models are scored "
                         "with COCO-style AP (use a COCO or CrowdPose file)")
    predictions = predict_dataset_bottomup(model, dataset, flip_test=flip_test, backend=backend, progress=progress,
                                           num_workers=num_workers)
    results = people_results(predictions)
    if results:
        stats = score_results(benchmark, dataset, results)
    else:
        from .crowdpose_metrics import CROWDPOSE_STAT_NAMES

        warnings.warn("evaluate: the model found no person in any image; every statistic is 0", stacklevel=2)
        stats = dict.fromkeys(CROWDPOSE_STAT_NAMES if benchmark == "crowdpose" else STAT_NAMES, 0.0)
    if out_dir is not None:
        title = (f"{kset.name} keypoints (bottom-up), {len(predictions)} images, {len(results)} people, "
                 f"flip test {'on' if flip_test else 'off'}")
        write_scores(out_dir, benchmark, stats, results=results, title=title)
    return stats
