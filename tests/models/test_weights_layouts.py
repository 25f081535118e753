"""Layout detection and key mapping of checkpoint files (srpose_fast/models/weights/layouts.py),
against SPEC.md section 8's converter rules, on small stand-in state dicts."""
from collections import OrderedDict

import pytest
import torch

from srpose_fast.models.weights import CheckpointError, map_to_native
from srpose_fast.models.weights.layouts import BARE, MMPOSE_0X, MMPOSE_1X, NATIVE, PROJECT_NAMES, SRPOSE_FORK

T = torch.zeros(1)


def _keys(mapped) -> set[str]:
    return set(mapped.state)


def test_srpose_fork_renames_keypoint_head():
    state = OrderedDict([("backbone.conv1.weight", T), ("keypoint_head.lr_head.0.weight", T),
                         ("keypoint_head.converge.3.conv.bias", T)])
    mapped = map_to_native({"meta": {"mmcv_version": "1.7.0"}, "state_dict": state, "optimizer": {}}, "f")
    assert mapped.layout == SRPOSE_FORK
    assert _keys(mapped) == {"backbone.conv1.weight", "head.lr_head.0.weight", "head.converge.3.conv.bias"}
    assert mapped.changes == ["renamed keypoint_head.* -> head.* (2 keys)"]
    assert mapped.ignored_entries == ["meta", "optimizer"] and mapped.model_name is None


def test_mmpose_0x_simple_head_is_the_same_rename():
    state = {"backbone.conv1.weight": T, "keypoint_head.final_layer.weight": T, "keypoint_head.deconv_layers.0.weight": T}
    mapped = map_to_native({"meta": {}, "state_dict": state}, "f")
    assert mapped.layout == MMPOSE_0X
    assert _keys(mapped) == {"backbone.conv1.weight", "head.final_layer.weight", "head.deconv_layers.0.weight"}


def test_mmpose_1x_drops_the_preprocessor():
    state = {"backbone.conv1.weight": T, "head.final_layer.weight": T, "data_preprocessor.mean": T,
             "data_preprocessor.std": T}
    mapped = map_to_native({"meta": {"mmengine_version": "0.7.4"}, "state_dict": state}, "f")
    assert mapped.layout == MMPOSE_1X
    assert _keys(mapped) == {"backbone.conv1.weight", "head.final_layer.weight"}
    assert mapped.changes == ["dropped data_preprocessor.* (mmpose 1.x normalisation buffers) (2 keys)"]
    # A training file is recognised by its message hub even without a version in meta.
    assert map_to_native({"meta": {}, "state_dict": state, "message_hub": {}}, "f").layout == MMPOSE_1X


def test_torchvision_resnet_loses_fc_and_gains_the_backbone_prefix():
    mapped = map_to_native({"conv1.weight": T, "layer4.2.bn3.bias": T, "fc.weight": T, "fc.bias": T}, "f")
    assert mapped.layout == BARE
    assert _keys(mapped) == {"backbone.conv1.weight", "backbone.layer4.2.bn3.bias"}
    assert "dropped fc.* (an ImageNet classifier) (2 keys)" in mapped.changes


def test_official_simple_baseline_file_splits_into_backbone_and_head():
    mapped = map_to_native({"state_dict": {"conv1.weight": T, "deconv_layers.0.weight": T, "final_layer.bias": T}}, "f")
    assert _keys(mapped) == {"backbone.conv1.weight", "head.deconv_layers.0.weight", "head.final_layer.bias"}


def test_data_parallel_prefix_is_stripped_first():
    mapped = map_to_native({"state_dict": {"module.backbone.conv1.weight": T, "module.keypoint_head.final_layer.bias": T}},
                           "f")
    assert _keys(mapped) == {"backbone.conv1.weight", "head.final_layer.bias"}
    assert mapped.changes[0] == "stripped the DataParallel prefix module. (2 keys)"


def test_project_names_and_native_checkpoints_are_kept():
    state = {"backbone.conv1.weight": T, "head.final_layer.bias": T}
    assert map_to_native(state, "f").layout == PROJECT_NAMES and _keys(map_to_native(state, "f")) == set(state)
    native = map_to_native({"format_version": 1, "model_name": "simple_res50", "keypoint_set": "mpii", "model": state,
                            "optimizer": None, "config": {"keypoint_set": "coco"}}, "f")
    assert native.layout == NATIVE and _keys(native) == set(state)
    assert (native.model_name, native.keypoint_set) == ("simple_res50", "mpii")
    # Checkpoints written before the keypoint set was stored: the config's.
    older = map_to_native({"format_version": 1, "model_name": "x", "model": state, "config": {"keypoint_set": "coco"}}, "f")
    assert older.keypoint_set == "coco"


def test_non_tensor_entries_are_counted_and_skipped():
    mapped = map_to_native({"state_dict": {"backbone.w": T, "epoch": 3}}, "f")
    assert _keys(mapped) == {"backbone.w"} and mapped.changes == ["skipped non-tensor entries (1 key)"]


@pytest.mark.parametrize("obj, message", [
    ([T], "holds a list, not a checkpoint"),
    ({"state_dict": {"epoch": 1}}, r"holds no weights \(no tensors among its entries: epoch\)"),
    ({}, r"holds no weights \(no tensors among its entries: none\)"),
])
def test_files_without_weights_are_refused(obj, message):
    with pytest.raises(CheckpointError, match=message):
        map_to_native(obj, "f.pth")
