"""One scoring function per benchmark, called by `srpose-fast eval` and `srpose-fast score` alike.

- coco: `coco_metrics.coco_keypoint_eval`, COCO's keypoint AP/AR:
  AP AP50 AP75 APm APl AR AR50 AR75 ARm ARl;
- crowdpose: `crowdpose_metrics.crowdpose_keypoint_eval`, CrowdPose's, with AP by crowd index:
  AP AP50 AP75 AR AR50 AR75 AP(E) AP(M) AP(H);
- mpii: `pckh.mpii_pckh_eval`, MPII's PCKh with head boxes: PCKh@0.5 PCKh@0.1, Head Shoulder Elbow
  Wrist Hip Knee Ankle, and each joint by its name (at 0.5).

The benchmark of a data set (`benchmark_of`): mpii for MPII's keypoint set, crowdpose when its
images carry a "crowdIndex", coco otherwise. Results are COCO-format keypoint results; for mpii one
per ground-truth person in the data set's order (PCKh has no detections to match).
"""
from __future__ import annotations

import json
from pathlib import Path

BENCHMARKS = ("coco", "crowdpose", "mpii")
HEADLINE = {"coco": "AP", "crowdpose": "AP", "mpii": "PCKh@0.5"}  # the number papers quote


def benchmark_of(dataset) -> str:
    """The benchmark that scores a `TopDownCocoDataset` (see the module docstring)."""
    if dataset.keypoint_set.name == "mpii":
        return "mpii"
    if dataset.coco is not None and any("crowdIndex" in img for img in dataset.coco.dataset["images"]):
        return "crowdpose"
    return "coco"


def score_results(benchmark: str, dataset, results: list[dict], *, gt_file=None) -> dict[str, float]:
    """The benchmark's statistics of `results` on the data set's ground truth (fractions; -1 where
    a statistic has no ground truth). gt_file: MPII's `mpii_gt_val.mat` (see `pckh`)."""
    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {benchmark!r}; known: {', '.join(BENCHMARKS)}")
    sigmas = dataset.keypoint_set.sigmas
    if benchmark == "mpii":
        from .pckh import mpii_ground_truth, mpii_pckh_eval

        if dataset.keypoint_set.name != "mpii":
            raise ValueError(f"PCKh is MPII's measure; {dataset.ann_file} holds the "
                             f"{dataset.keypoint_set.name} keypoints")
        return mpii_pckh_eval(results, mpii_ground_truth(dataset, gt_file), dataset.keypoint_set)
    if dataset.coco is None:
        raise ValueError(f"{dataset.ann_file} is in mmpose's MPII layout: it has no COCO ground truth for "
                         f"{benchmark} AP; score it as mpii")
    if benchmark == "crowdpose":
        from .crowdpose_metrics import crowdpose_keypoint_eval

        return crowdpose_keypoint_eval(dataset.coco, results, sigmas)
    from .coco_metrics import coco_keypoint_eval

    return coco_keypoint_eval(dataset.coco, results, sigmas)


def scores_markdown(benchmark: str, stats: dict[str, float], *, title: str | None = None) -> str:
    """The benchmark's table: one row of its summary; for mpii MPII's table (Head ... Ankle, the
    Mean at 0.5 and 0.1), then the joints."""
    from .coco_metrics import metrics_markdown

    if benchmark != "mpii":
        return metrics_markdown(stats, title=title)
    from .pckh import PCKH_GROUPS, PCKH_THRESHOLDS

    table = [name for name in (*PCKH_GROUPS, *PCKH_THRESHOLDS) if name in stats]
    joints = {name: value for name, value in stats.items() if name not in table}
    return metrics_markdown({name: stats[name] for name in table}, title=title) + "\n" + metrics_markdown(joints)


def write_scores(out_dir, benchmark: str, stats: dict[str, float], *, results: list[dict] | None = None,
                 title: str | None = None) -> Path:
    """metrics.json (the statistics), metrics.md (`scores_markdown`) and, when given,
    keypoints_results.json (the scored results) under out_dir, each written atomically."""
    from .checkpoint import atomic_write

    out = Path(out_dir)
    files = {"metrics.json": json.dumps(stats, indent=2) + "\n",
             "metrics.md": scores_markdown(benchmark, stats, title=title)}
    if results is not None:
        files["keypoints_results.json"] = json.dumps(results)
    for name, text in files.items():
        atomic_write(out / name, lambda f, text=text: f.write(text.encode()))
    return out


__all__ = ["BENCHMARKS", "HEADLINE", "benchmark_of", "score_results", "scores_markdown", "write_scores"]
