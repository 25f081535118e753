"""`srpose-fast score RESULTS.json --ann GT`: score an existing keypoint results file as its benchmark does.

The results file is COCO's keypoint results format, a JSON list of
{"image_id", "category_id", "keypoints": [x, y, score] * K, "score"}, each result optionally with
"box_score" (the box's detection score, for --rescore) and "area" (the box scale's w x h, for
--oks-nms), as mmpose's CocoMetric takes them. For MPII: one result per person of the annotation
file, in its order (what `srpose-fast eval` writes). The scoring is the same function `eval` calls
(`engine.scoring.score_results`).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from .common import KEYPOINT_SET_NAMES


def add_benchmark_args(p: argparse.ArgumentParser) -> None:
    """--dataset and --mpii-gt (eval and score)."""
    from ..engine.scoring import BENCHMARKS

    p.add_argument("--dataset", choices=BENCHMARKS,
                   help="the benchmark's scoring (default: mpii for MPII's keypoints, crowdpose when the "
                        "images have a crowdIndex, coco otherwise)")
    p.add_argument("--mpii-gt", help="MPII's official ground truth mpii_gt_val.mat (default: next to the "
                                     "annotation file, as mmpose keeps it)")


def run(args: argparse.Namespace) -> int:
    from ..data.coco import TopDownCocoDataset, _load_json
    from ..data.layouts import detect_keypoint_set
    from ..engine.rescoring import postprocess_results
    from ..engine.scoring import benchmark_of, score_results, scores_markdown, write_scores
    from ..keypoint_sets import get_keypoint_set

    results = _load_json(args.results, "results file")
    if not isinstance(results, list):
        raise ValueError(f"results file {args.results}: expected a JSON list of COCO keypoint results, "
                         f"got {type(results).__name__}")
    if args.oks_nms is not None and not 0 <= args.oks_nms <= 1:
        raise ValueError(f"--oks-nms is an OKS threshold in [0, 1] (mmpose: 0.9), got {args.oks_nms}")
    kset = get_keypoint_set(args.keypoint_set) if args.keypoint_set else detect_keypoint_set(args.ann)
    dataset = TopDownCocoDataset(args.ann, Path(args.ann).parent, keypoint_set=kset, train=False)
    benchmark = args.dataset or benchmark_of(dataset)
    if benchmark == "mpii" and (args.rescore or args.oks_nms is not None):
        raise ValueError("MPII's PCKh scores each person's own prediction: --rescore and --oks-nms do not apply")
    scored = postprocess_results(results, kset.sigmas, rescore_scores=args.rescore, nms_threshold=args.oks_nms)
    stats = score_results(benchmark, dataset, scored, gt_file=args.mpii_gt)
    steps = [s for s, on in (("rescored", args.rescore), (f"OKS-NMS {args.oks_nms}", args.oks_nms is not None)) if on]
    title = f"{Path(args.results).name} on {Path(args.ann).name}, {benchmark}" + "".join(f", {s}" for s in steps)
    print(scores_markdown(benchmark, stats, title=title), end="")
    if args.out:
        write_scores(args.out, benchmark, stats, results=scored if steps else None, title=title)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("score", help="score a COCO-format keypoint results file as its benchmark does "
                                     "(COCO, CrowdPose, MPII)")
    p.add_argument("results", help="keypoint results JSON (COCO's results format)")
    p.add_argument("--ann", required=True, help="ground truth: COCO / CrowdPose annotation file, or MPII's "
                                                "(mmpose's mpii_val.json, or COCO format)")
    add_benchmark_args(p)
    p.add_argument("--keypoint-set", choices=KEYPOINT_SET_NAMES,
                   help="the annotation file's keypoints (default: read from the file)")
    p.add_argument("--rescore", action="store_true",
                   help="score each result box_score x mean keypoint score above 0.2 (box_score 1 if absent)")
    p.add_argument("--oks-nms", type=float, metavar="THR",
                   help="OKS-NMS per image at THR (mmpose: 0.9), each result's area its 'area' (else the "
                        "keypoints' extent)")
    p.add_argument("--out", help="folder for metrics.json and metrics.md (and the rescored results)")
    p.set_defaults(func=run)
