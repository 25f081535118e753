"""The MPII and CrowdPose configs: SRPose's schedule with each benchmark's protocol, in mmpose's layout."""
from pathlib import Path

import pytest

from mpii_fixtures import write_mpii
from srpose_fast.engine.config import load_config
from srpose_fast.engine.trainer import build_train_dataset
from srpose_fast.models import MODEL_SPECS, build_model

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
BENCHMARK_CONFIGS = {"srpose_hrnet_w32_mpii": ("mpii", (256, 256)), "srpose_res50_mpii": ("mpii", (256, 256)),
                     "srpose_hrnet_w32_crowdpose": ("crowdpose", (256, 192))}


@pytest.mark.parametrize("name", BENCHMARK_CONFIGS)
def test_benchmark_config_files(name):
    config = load_config(CONFIGS / f"{name}.json")
    keypoint_set, input_size = BENCHMARK_CONFIGS[name]
    assert config.model in MODEL_SPECS and name.startswith(config.model) and name in config.output_dir
    assert (config.keypoint_set, config.input_size) == (keypoint_set, input_size)
    # SRPose's schedule (SPEC.md section 2); mmpose's 64 images per GPU for both benchmarks.
    assert (config.optimizer, config.lr, config.warmup_iters, config.warmup_ratio, config.lr_steps, config.epochs,
            config.batch_size) == ("adam", 5e-4, 500, 0.001, (170, 200), 210, 64)
    assert all(path.startswith(f"data/{keypoint_set}/") for path in
               (config.train_ann, config.train_images, config.val_ann, config.val_images))
    if keypoint_set == "mpii":  # ground-truth persons, no half-body (mmpose's MPII configs)
        assert config.val_ann.endswith("mpii_val.json") and config.val_bbox_file is None
        assert config.half_body_prob == 0.0
    else:  # mmpose's CrowdPose test protocol: its detections; half-body above 6 visible joints
        assert config.val_bbox_file.endswith("det_for_crowd_test_0.1_0.5.json")
        assert (config.half_body_prob, config.half_body_min_joints) == (0.3, 6)


def test_mpii_config_trains_on_mmpose_layout(tmp_path):
    mpii = write_mpii(tmp_path)
    config = load_config(CONFIGS / "srpose_hrnet_w32_mpii.json").replace(
        model="srpose_demo", input_size=(64, 64), train_ann=str(mpii.ann), train_images=str(mpii.images))
    model = build_model(config.model, keypoint_set=config.keypoint_set, input_size=config.input_size)
    dataset = build_train_dataset(config, model)
    assert len(dataset) == 4 and dataset.augment.half_body_prob == 0.0
    sample = dataset[0]
    assert tuple(sample["image"].shape) == (3, 64, 64) and tuple(sample["keypoints"].shape) == (16, 2)
    crowd = load_config(CONFIGS / "srpose_hrnet_w32_crowdpose.json")
    assert build_train_dataset(crowd.replace(model="srpose_demo", train_ann=str(mpii.ann),
                                             train_images=str(mpii.images), keypoint_set="mpii"),
                               model).augment.half_body_min_joints == 6
