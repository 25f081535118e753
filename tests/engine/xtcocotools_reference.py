"""Expected numbers for the scoring tests, computed with xtcocotools (the evaluator mmpose runs).

xtcocotools needs numpy < 2, so it cannot be a dependency of this project; run this script in a
separate environment, outside the repository:

    python3 -m venv /work/team/xtco
    /work/team/xtco/bin/pip install "numpy<2" cython xtcocotools    # took xtcocotools 1.14.3, numpy 1.26.4
    /work/team/xtco/bin/python tests/engine/xtcocotools_reference.py

It prints the constants that tests/engine/test_scoring_reference.py holds. The fixtures come from
tests/scoring_fixtures.py (pure Python, identical in both environments); the sigmas from the
project's keypoint_sets.py (torch-free).

What it runs:
- CrowdPose: COCOeval(gt, results, "keypoints_crowd", CrowdPose's sigmas, use_area=False), as
  mmpose scores CrowdPose;
- COCO: COCOeval(gt, results, "keypoints", COCO's sigmas, use_area=True), as mmpose scores COCO;
- ties: the rescoring and OKS-NMS rule of mmpose's CocoMetric, written out here from its
  definition (instance score = box score x mean keypoint score above 0.2; visit instances in
  `scores.argsort()[::-1]` order, numpy's default sort; keep one, drop those whose OKS with it,
  held in float32, is above 0.9; results in the order kept), then "keypoints" COCOeval.
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from xtcocotools.coco import COCO
from xtcocotools.cocoeval import COCOeval

TESTS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(TESTS), str(TESTS.parent)]  # scoring_fixtures, srpose_fast

from scoring_fixtures import coco_fixture, crowdpose_fixture, tie_fixture  # noqa: E402
from srpose_fast.keypoint_sets import COCO as COCO_SET, CROWDPOSE  # noqa: E402


def xtcocotools_stats(gt: dict, results: list, iou_type: str, sigmas, use_area: bool) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gt.json"
        path.write_text(json.dumps(gt))  # get_type_result reads crowdIndex from the file
        coco = COCO(str(path))
        evaluator = COCOeval(coco, coco.loadRes(json.loads(json.dumps(results))), iou_type,
                             np.array(sigmas), use_area=use_area)
        evaluator.params.useSegm = None
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
        return [float(v) for v in evaluator.stats]


def mmpose_rule_keep(pred: dict, sigmas) -> tuple[list[int], list[float]]:
    """Kept instance indices (per image, in the order kept) and every instance's score."""
    scores = []
    for box, kscores in zip(pred["box_score"], pred["keypoint_scores"]):
        total, count = 0, 0
        for s in kscores:
            if s > 0.2:
                total += s
                count += 1
        scores.append(box * (total / count if count else 0))
    variances = (np.array(sigmas) * 2) ** 2
    keep_all = []
    for image_id in dict.fromkeys(pred["image_id"]):
        members = [i for i, m in enumerate(pred["image_id"]) if m == image_id]
        order = np.array([scores[i] for i in members]).argsort()[::-1]
        while len(order):
            first = order[0]
            keep_all.append(members[first])
            rest = order[1:]
            overlap = np.zeros(len(rest), dtype=np.float32)
            for n, other in enumerate(rest):
                a = np.array(pred["keypoints"][members[first]])
                b = np.array(pred["keypoints"][members[other]])
                mean_area = (pred["area"][members[first]] + pred["area"][members[other]]) / 2
                e = ((a - b) ** 2).sum(1) / variances / (mean_area + np.spacing(1)) / 2
                overlap[n] = np.exp(-e).mean()
            order = rest[overlap <= 0.9]
    return keep_all, scores


def main() -> None:
    gt, results = crowdpose_fixture()
    print("CROWDPOSE_EXPECTED =", xtcocotools_stats(gt, results, "keypoints_crowd", CROWDPOSE.sigmas, False))
    gt, results = coco_fixture()
    print("COCO_EXPECTED =", xtcocotools_stats(gt, results, "keypoints", COCO_SET.sigmas, True))
    gt, pred = tie_fixture()
    keep, scores = mmpose_rule_keep(pred, COCO_SET.sigmas)
    tie_results = [{"image_id": pred["image_id"][i], "category_id": 1, "score": float(scores[i]),
                    "keypoints": [float(v) for xy, s in zip(pred["keypoints"][i], pred["keypoint_scores"][i])
                                  for v in (*xy, s)]} for i in keep]
    print("TIE_KEEP =", [int(i) for i in keep])
    print("TIE_EXPECTED =", xtcocotools_stats(gt, tie_results, "keypoints", COCO_SET.sigmas, True))


if __name__ == "__main__":
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main()
    print("\n".join(line for line in out.getvalue().splitlines() if "_EXPECTED =" in line or "_KEEP =" in line))
