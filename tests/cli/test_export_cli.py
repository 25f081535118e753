"""`srpose-fast export` end to end: the demo SRPose model with a checkpoint to ONNX (checked under onnxruntime
against the torch path at two batch sizes) and to a torch.export program; its mistakes are one line."""
import json

import onnx
import pytest
import torch

from export_checks import assert_matches_torch, session_of
from srpose_fast.cli import main
from srpose_fast.engine.checkpoint import save_checkpoint
from srpose_fast.models import build_model

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "demo.pth"
    torch.manual_seed(3)
    save_checkpoint(path, build_model("srpose_demo"), model_name="srpose_demo")
    return path


def test_srpose_demo_to_onnx_matches_the_torch_path(checkpoint, tmp_path, capsys):
    out = tmp_path / "demo.onnx"
    assert main(["export", "srpose_demo", "--checkpoint", str(checkpoint), "--format", "onnx", "--out", str(out),
                 "--method", "dark"]) == 0
    assert "opset 18; flip test off, decoder dark" in capsys.readouterr().err
    model = build_model("srpose_demo", checkpoint=str(checkpoint)).eval()
    assert_matches_torch(session_of(out), model, flip_test=False, method="dark")
    meta = {p.key: json.loads(p.value) for p in onnx.load(str(out)).metadata_props}
    assert meta["input_size_hw"] == [128, 96] and meta["decode_method"] == "dark"


def test_torch_export_format_and_random_weights_warning(tmp_path, capsys):
    out = tmp_path / "demo.pt2"
    assert main(["export", "srpose_demo", "--format", "torch-export", "--out", str(out), "--flip-test"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("srpose-fast export: warning: no --checkpoint: srpose_demo runs on random weights")
    program = torch.export.load(str(out))
    images = torch.randn(3, 3, 128, 96)
    center, scale = torch.tensor([[48.0, 64.0]] * 3), torch.tensor([[0.48, 0.64]] * 3)
    keypoints, scores = program.module()(images, center, scale)
    assert keypoints.shape == (3, 17, 2) and scores.shape == (3, 17)


@pytest.mark.parametrize("args, message", [
    (["no_such_model", "--out", "m.onnx"], "unknown model 'no_such_model'"),
    (["srpose_demo", "--out", "m.onnx", "--checkpoint", "missing.pth"], "missing.pth"),
    (["srpose_demo", "--out", "{tmp}"], "is a folder; name the file to write"),
    (["bottomup_demo", "--out", "m.onnx"], "is a bottom-up model; export takes top-down models"),
])
def test_mistakes_are_one_line(tmp_path, capsys, args, message):
    assert main(["export", *[a.format(tmp=tmp_path) for a in args]]) == 2
    err = capsys.readouterr().err
    assert err.startswith("srpose-fast export: error:") and err.count("\n") == 1 and message in err, err
