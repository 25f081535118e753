"""A training config's evaluation protocol, applied the same way by `srpose-fast eval` and by the evaluation
during training (`val_interval`).

SRPose's COCO protocol (SPEC.md sections 3 and 4), the configs' default: person boxes from the detection
file (`val_bbox_file`, AP 56.4 detector) with score >= `det_bbox_thr` (0), flip test, the shift decoder,
instance score = box score x mean keypoint score above `vis_thr` (0.2), OKS-NMS at `oks_nms_thr` (0.9).
"""
from __future__ import annotations

import sys
from typing import Callable

from torch import nn

from ..models.pose_model import BOTTOM_UP, model_kind
from .config import TrainConfig

# What selects the best checkpoint: COCO's and CrowdPose's AP, else MPII's PCKh (as mmpose's save_best).
BEST_METRICS = ("AP", "PCKh")


def eval_dataset(model, config: TrainConfig, *, ann=None, images=None, detections: str | None = None,
                 gt_boxes: bool = False):
    """The evaluation set of `config` (its val_ann / val_images unless `ann` / `images` are given), for `model`.
    A top-down model's is cropped around person boxes: the ground truth's with `gt_boxes`, else the file
    `detections`, else the config's `val_bbox_file` (None: the ground truth's); detections below
    `det_bbox_thr` are dropped. A bottom-up model's holds whole images (SPEC.md section 6): no boxes."""
    from ..data.coco import TopDownCocoDataset

    if model_kind(model) == BOTTOM_UP:
        from ..data.bottomup import BottomUpCocoDataset

        if detections:
            raise ValueError("this is a bottom-up model: it finds the people itself, --detections does not apply")
        return BottomUpCocoDataset(ann or config.val_ann, images or config.val_images, keypoint_set=model.keypoint_set,
                                   input_size=model.codec.input_size, train=False)
    if detections is not None and not str(detections).strip():
        raise ValueError("--detections needs a file; use --gt-boxes for the ground-truth boxes")
    boxes = None if gt_boxes else detections or config.val_bbox_file
    dataset = TopDownCocoDataset(ann or config.val_ann, images or config.val_images, keypoint_set=model.keypoint_set,
                                 input_size=model.input_size, train=False, detections=boxes,
                                 min_box_score=config.det_bbox_thr)
    dataset.check_images()
    return dataset


def evaluate_with(model, dataset, config: TrainConfig, *, method: str | None = None, flip_test: bool | None = None,
                  batch_size: int | None = None, **options) -> dict[str, float]:
    """`evaluator.evaluate` with the config's test settings; `method`, `flip_test` and `batch_size` override
    them, `options` are evaluate's other arguments (out_dir, progress, benchmark, gt_file, ...)."""
    from .evaluator import evaluate

    return evaluate(model, dataset, method=method or config.decode_method,
                    flip_test=config.flip_test if flip_test is None else flip_test,
                    batch_size=batch_size or config.batch_size, vis_thr=config.vis_thr,
                    oks_nms_thr=config.oks_nms_thr, **options)


def best_metric(stats: dict[str, float]) -> str:
    """The statistic that ranks checkpoints: AP, or PCKh for MPII."""
    for name in BEST_METRICS:
        if name in stats:
            return name
    raise ValueError(f"the evaluation returned none of {BEST_METRICS} (got {sorted(stats)})")


def build_validator(config: TrainConfig, model) -> Callable[[nn.Module], dict]:
    """`validate(model) -> stats` on the config's validation set with its protocol; the set is read once,
    here, so that a missing file stops training before the first epoch. A progress bar as the config's
    `progress` says (None: on a terminal)."""
    progress = sys.stderr.isatty() if config.progress is None else config.progress
    dataset = eval_dataset(model, config)
    if model_kind(model) == BOTTOM_UP:
        from .bottomup_evaluator import evaluate_bottomup

        return lambda trained: evaluate_bottomup(trained, dataset, flip_test=config.flip_test, progress=progress)

    def validate(trained: nn.Module) -> dict[str, float]:
        return evaluate_with(trained, dataset, config, progress=progress)

    return validate
