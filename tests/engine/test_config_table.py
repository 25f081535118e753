"""Every config in configs/ against the original's numbers (issue 12 item 6).

The expected values are written here from SPEC.md (sections 1-4 for the COCO configs, 7 for HRFormer-S), not
read back from the configs. The original has no MPII or CrowdPose top-down config: those rows are SPEC.md
section 2's training settings with the data set's protocol as mmpose 0.x's hrnet_w32_mpii_256x256 and
hrnet_w32_crowdpose_256x192 set it. A config file without a row fails, so no config is added unchecked.
Heatmap sizes, sigma and loss weights are the built model's (on the meta device where it builds there).
"""
from pathlib import Path

import pytest

from srpose_fast.engine.config import load_config
from srpose_fast.models import MODEL_SPECS
from srpose_fast.models.weights.identify import build_without_weights

CONFIGS = Path(__file__).resolve().parents[2] / "configs"

# SPEC.md section 2: Adam 5e-4, linear warm-up 500 iterations from 0.001, x0.1 at 170 and 200, 210 epochs, 32 per GPU.
SRPOSE_OPTIMISER = dict(optimizer="adam", lr=5e-4, weight_decay=0.0, warmup_iters=500, warmup_ratio=0.001,
                        lr_steps=(170, 200), lr_gamma=0.1, epochs=210, batch_size=32, grad_clip=None)
# SPEC.md section 7: AdamW 5e-4, betas (.9, .999), wd 0.01 but 0 on the bias tables, same schedule, fp16 with a
# dynamic loss scale, SyncBN, a checkpoint every 5 epochs.
HRFORMER_OPTIMISER = dict(SRPOSE_OPTIMISER, optimizer="adamw", weight_decay=0.01,
                          no_weight_decay=("relative_position_bias_table",), amp="fp16", sync_bn="backbone",
                          checkpoint_interval=5)
# SPEC.md section 2: flip 0.5, half-body 0.3 above 8 visible joints, scale 0.5, rotation 40 with p 0.6, 30% of
# the box centres moved; MSRA Gaussian targets.
SRPOSE_AUGMENTATION = dict(flip_prob=0.5, half_body_prob=0.3, half_body_min_joints=8, scale_factor=0.5,
                           rot_factor=40.0, rot_prob=0.6, box_shift_prob=0.3, target_method="msra")
# SPEC.md sections 3 and 4: the AP 56.4 person detections, no score threshold, flip test, shift, rescoring above
# 0.2, OKS-NMS 0.9; evaluated every 10 epochs.
TEST_PROTOCOL = dict(det_bbox_thr=0.0, flip_test=True, decode_method="shift", vis_thr=0.2, oks_nms_thr=0.9,
                     val_interval=10)
COCO = dict(keypoint_set="coco", input_size=(256, 192),
            val_bbox_file="data/coco/person_detection_results/COCO_val2017_detections_AP_H_56_person.json",
            **TEST_PROTOCOL)
# mmpose 0.x's MPII protocol: 256x256 crops, 64 per GPU, no half-body, boxes from the annotation (no shift).
MPII = dict(keypoint_set="mpii", input_size=(256, 256), val_bbox_file=None, batch_size=64, half_body_prob=0.0,
            box_shift_prob=0.0, **TEST_PROTOCOL)
# mmpose 0.x's CrowdPose protocol: its person detections, 64 per GPU, half-body above 6 visible joints.
CROWDPOSE = dict(keypoint_set="crowdpose", input_size=(256, 192), batch_size=64, half_body_min_joints=6,
                 val_bbox_file="data/crowdpose/annotations/det_for_crowd_test_0.1_0.5.json", **TEST_PROTOCOL)

# The heads at a 256-pixel-high crop (SPEC.md sections 1 and 2): train-mode outputs, sigma of the final map,
# loss weights. Sizes are given per crop width: (H, W) for 192 and for 256 wide crops.
HEADS = {
    "srpose": ({192: ((8, 6), (64, 48), (64, 48), (64, 48), (256, 192)),
                256: ((8, 8), (64, 64), (64, 64), (64, 64), (256, 256))}, 8.0, (1e-4, 1.0, 1.0, 1.0, 1.0)),
    "sr": ({192: ((256, 192),)}, 8.0, (1.0,)),
    "simple": ({192: ((64, 48),)}, 2.0, (1.0,)),
}

# SPEC.md section 6 (bottom-up, 512x512): Adam 1.5e-3, warm-up 500 iterations from 0.001, x0.1 at 200 and 260,
# 300 epochs, 24 per GPU, evaluated and checkpointed every 50 epochs with flip test (no boxes). The codec of each:
# (input side, heatmap side, sigma, NMS kernel).
BOTTOMUP = dict(optimizer="adam", lr=1.5e-3, weight_decay=0.0, warmup_iters=500, warmup_ratio=0.001,
                lr_steps=(200, 260), lr_gamma=0.1, epochs=300, batch_size=24, grad_clip=None, keypoint_set="coco",
                input_size=(512, 512), flip_test=True, val_interval=50, checkpoint_interval=50)
BOTTOMUP_CODECS = {"bottomup_sr_hrnet_w32": (512, 512, 8.0, 11), "bottomup_sr_res50": (512, 512, 8.0, 5),
                   "bottomup_simple_hrnet_w32": (512, 128, 2.0, 5), "bottomup_simple_res50": (512, 128, 2.0, 5)}


def _row(model, *parts, **more):
    row = {"model": model}
    for part in parts:
        row.update(part)
    row.update(more)
    return row


TABLE = {
    "srpose_hrnet_w32.json": _row("srpose_hrnet_w32", SRPOSE_OPTIMISER, SRPOSE_AUGMENTATION, COCO),
    "srpose_res50.json": _row("srpose_res50", SRPOSE_OPTIMISER, SRPOSE_AUGMENTATION, COCO),
    "sr_hrnet_w32.json": _row("sr_hrnet_w32", SRPOSE_OPTIMISER, SRPOSE_AUGMENTATION, COCO),
    "simple_hrnet_w32.json": _row("simple_hrnet_w32", SRPOSE_OPTIMISER, SRPOSE_AUGMENTATION, COCO),
    "simple_res50.json": _row("simple_res50", SRPOSE_OPTIMISER, SRPOSE_AUGMENTATION, COCO),
    "srpose_hrformer_s.json": _row("srpose_hrformer_s", HRFORMER_OPTIMISER, SRPOSE_AUGMENTATION, COCO),
    "sr_hrformer_s.json": _row("sr_hrformer_s", HRFORMER_OPTIMISER, SRPOSE_AUGMENTATION, COCO),
    "simple_hrformer_s.json": _row("simple_hrformer_s", HRFORMER_OPTIMISER, SRPOSE_AUGMENTATION, COCO),
    "srpose_hrnet_w32_mpii.json": _row("srpose_hrnet_w32", SRPOSE_OPTIMISER, SRPOSE_AUGMENTATION, MPII),
    "srpose_res50_mpii.json": _row("srpose_res50", SRPOSE_OPTIMISER, SRPOSE_AUGMENTATION, MPII),
    "srpose_hrnet_w32_crowdpose.json": _row("srpose_hrnet_w32", SRPOSE_OPTIMISER, SRPOSE_AUGMENTATION, CROWDPOSE),
    # Not an original config: the CPU demo keeps SRPose's optimiser, augmentation and test settings on its
    # own schedule and crop size (lr, epochs, steps, warm-up length, batch and input size are its own).
    **{f"{name}.json": _row(name, BOTTOMUP) for name in BOTTOMUP_CODECS},
    "srpose_demo.json": _row("srpose_demo", SRPOSE_AUGMENTATION, TEST_PROTOCOL, optimizer="adam", weight_decay=0.0,
                             warmup_ratio=0.001, lr_gamma=0.1, keypoint_set="coco", val_bbox_file=None),
}


def test_every_config_has_a_row():
    files = sorted(path.name for path in CONFIGS.glob("*.json"))
    assert files, f"no configs in {CONFIGS}"
    missing = [name for name in files if name not in TABLE]
    assert not missing, f"configs without a row in the table (add one from SPEC.md): {missing}"


@pytest.mark.parametrize("name", sorted(path.name for path in CONFIGS.glob("*.json")))
def test_config_matches_the_original(name):
    if name not in TABLE:
        pytest.fail(f"{name} has no row in the table")
    config = load_config(CONFIGS / name)
    expected = TABLE[name]
    got = {key: getattr(config, key) for key in expected}
    assert got == expected

    if config.model in BOTTOMUP_CODECS:
        codec = build_without_weights(config.model, keypoint_set=config.keypoint_set, input_size=config.input_size).codec
        assert (codec.input_size, codec.heatmap_size, codec.sigma, codec.nms_kernel) == BOTTOMUP_CODECS[config.model]
        return
    spec = MODEL_SPECS[config.model]
    codec = build_without_weights(config.model, keypoint_set=config.keypoint_set, input_size=config.input_size).codec
    height, width = codec.input_size
    sizes, sigma_at_256, weights = HEADS[spec.head]
    assert codec.input_size == tuple(config.input_size)
    if name != "srpose_demo.json":  # the demo's crop is its own; its head is checked at scale below
        assert codec.heatmap_sizes == sizes[width]
    final_stride = 256 // sizes[192][-1][0]
    assert codec.heatmap_sizes[-1] == (height // final_stride, width // final_stride)
    assert codec.sigma == sigma_at_256 * height / 256 and codec.stage_weights == weights
    assert codec.target_method == config.target_method
