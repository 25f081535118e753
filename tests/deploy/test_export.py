"""Exported models (srpose_fast.deploy.export) against the torch path they were traced from
(`export_checks.assert_matches_torch`: onnxruntime at two batch sizes, keypoints within 1e-3 heatmap pixels,
scores within 1e-5). The single-map heads run on a ResNet-18 with narrow deconvolutions, SRPose on the demo
model (tests/cli/test_export_cli.py) and, here, at the paper's full size (ResNet-50, 256x192).
"""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

from export_checks import assert_matches_torch, crops, session_of
from srpose_fast.deploy.export import (INPUT_NAMES, METADATA_FILE, ONNX_OPSET, OUTPUT_NAMES, PoseGraph, export_model,
                                       export_onnx)
from srpose_fast.models import build_model
from srpose_fast.models.build import MODEL_SPECS, ModelSpec


# Narrow models of the two single-map head kinds (ResNet-18, one or two narrow deconvolutions, 64x64 crops).
TINY_SPECS = {
    "sr_tiny": ModelSpec("resnet18", "sr", head_kwargs={"num_deconv_layers": 1, "deconv_channels": 16},
                         input_size=(64, 64)),
    "simple_tiny": ModelSpec("resnet18", "simple", head_kwargs={"num_deconv_layers": 2, "deconv_channels": 16},
                             input_size=(64, 64)),
}


@pytest.fixture
def tiny_specs(monkeypatch):
    for name, spec in TINY_SPECS.items():
        monkeypatch.setitem(MODEL_SPECS, name, spec)


def test_the_sr_head_matches_torch_under_onnxruntime(tmp_path, tiny_specs, single_thread):
    torch.manual_seed(0)
    model = build_model("sr_tiny").eval()
    path = export_onnx(model, tmp_path / "sr_tiny.onnx", flip_test=True, method="dark")
    assert_matches_torch(session_of(path), model, flip_test=True, method="dark")


def test_the_simple_head_matches_torch_and_its_file_states_opset_inputs_and_metadata(tmp_path, tiny_specs,
                                                                                       single_thread):
    torch.manual_seed(0)
    model = build_model("simple_tiny", keypoint_set="mpii").eval()
    path = export_onnx(model, tmp_path / "m.onnx", flip_test=True, method="shift")
    assert_matches_torch(session_of(path), model, flip_test=True, method="shift")
    proto = onnx.load(str(path))
    assert {o.domain: o.version for o in proto.opset_import}[""] == ONNX_OPSET
    assert [i.name for i in proto.graph.input] == list(INPUT_NAMES)
    assert [o.name for o in proto.graph.output] == list(OUTPUT_NAMES)
    batch = [i.type.tensor_type.shape.dim[0] for i in proto.graph.input]
    assert all(d.dim_param and not d.dim_value for d in batch)  # a named, dynamic batch
    assert len({d.dim_param for d in batch}) == 1
    meta = {p.key: json.loads(p.value) for p in proto.metadata_props}
    assert meta["onnx_opset"] == ONNX_OPSET and meta["decode_method"] == "shift" and meta["flip_test"] is True
    assert meta["input_size_hw"] == [64, 64] and meta["keypoint_set"] == "mpii" and len(meta["keypoint_names"]) == 16
    assert meta["channel_order"] == "RGB" and np.allclose(meta["mean_0_255"], [123.675, 116.28, 103.53])
    assert {n.domain for n in proto.graph.node} <= {"", "ai.onnx"}  # standard operators only


def test_torch_export_program_round_trips(tmp_path, tiny_specs, single_thread):
    model = build_model("sr_tiny").eval()
    path = export_model(model, tmp_path / "m.pt2", format="torch-export", flip_test=True, method="shift")
    extra = {METADATA_FILE: ""}
    program = torch.export.load(str(path), extra_files=extra)
    assert json.loads(extra[METADATA_FILE])["flip_test"] is True
    for n in (1, 4):
        images, center, scale = crops(model, n)
        got = program.module()(images, center, scale)
        expected = model.predict(images, flip_test=True, method="shift", center=center, scale=scale, backend="torch")
        for a, b in zip(got, expected):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


def test_srpose_res50_at_full_size_matches_torch_at_batch_2(tmp_path, single_thread):
    torch.manual_seed(1)
    model = build_model("srpose_res50").eval()
    path = export_onnx(model, tmp_path / "srpose_res50.onnx", flip_test=True, method="shift")
    assert_matches_torch(session_of(path), model, flip_test=True, method="shift", batches=(2,))


def test_bad_options_are_refused_before_exporting(tiny_specs):
    model = build_model("simple_tiny")
    with pytest.raises(ValueError, match="method must be one of"):
        PoseGraph(model, method="soft-argmax")
    with pytest.raises(ValueError, match="format must be one of"):
        export_model(model, "x.onnx", format="tflite")
