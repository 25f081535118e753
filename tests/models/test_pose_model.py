"""TopDownPoseModel: it only runs backbone -> head (no head-specific branch), hands the flip test's two feature
lists to the head, and one backend setting reaches every fused op (SR head, loss, decode)."""
import pytest
import torch
import torch.nn as nn

from backend_probe import record_backends
from srpose_fast.codecs.heatmap_codec import HeatmapCodec
from srpose_fast.keypoint_sets import COCO
from srpose_fast.models import TopDownPoseModel, build_model

pytestmark = pytest.mark.usefixtures("single_thread")  # tests/conftest.py


class TwoMaps(nn.Module):
    def forward(self, images):
        return [images[:, :2] * 2.0, images[:, 1:] - 1.0]


class RecordingHead(nn.Module):
    """Not a HeatmapHead: only the methods the wrapper may call, each recording what it got."""

    def __init__(self):
        super().__init__()
        self.calls = []
        self.backend = "auto"

    def predict(self, feats, flipped_feats=None, **kwargs):
        self.calls.append(("predict", feats, flipped_feats, kwargs, self.training))
        return "keypoints", "scores"

    def loss(self, outputs, batch):
        self.calls.append(("loss", outputs, batch))
        return "loss"

    def set_backend(self, backend):
        self.calls.append(("set_backend", backend))


def test_the_wrapper_hands_over_to_the_head_and_nothing_else():
    head = RecordingHead()
    model = TopDownPoseModel(TwoMaps(), head, keypoint_set=COCO).train()
    images = torch.randn(3, 3, 32, 64)
    center, scale = torch.rand(3, 2), torch.rand(3, 2)
    out = model.predict(images, flip_test=True, method="dark", center=center, scale=scale, blur_kernel=5,
                        backend="torch")
    assert out == ("keypoints", "scores") and model.training  # the head's result; the mode restored
    name, feats, flipped, kwargs, training = head.calls[0]
    assert name == "predict" and not training
    for got, want in zip(feats + flipped, TwoMaps()(images) + TwoMaps()(images.flip(3))):
        assert torch.equal(got, want)
    assert kwargs == {"method": "dark", "blur_kernel": 5, "center": center, "scale": scale, "backend": "torch"}
    model.predict(images, flip_test=False)
    assert head.calls[1][2] is None and head.calls[1][3]["method"] is None  # the codec's defaults
    assert model.loss(["maps"], {"keypoints": 1}) == "loss" and head.calls[2] == ("loss", ["maps"], {"keypoints": 1})
    model.set_backend("cuda")
    assert head.calls[3] == ("set_backend", "cuda")


@pytest.mark.parametrize("name", ["srpose_demo", "simple_res50"])
def test_predict_equals_decoding_the_eval_heatmaps(name):
    """SR heads decode heatmap-free (sr_head_decode), the simple head decodes its heatmaps; both give what
    decoding the eval-mode heatmaps of the plain and the mirrored crops gives."""
    torch.manual_seed(4)
    model = build_model(name, input_size=(64, 64), backend="torch").eval()
    images = torch.randn(2, 3, 64, 64)
    center, scale = torch.tensor([[100.0, 80.0], [30.0, 40.0]]), torch.tensor([[0.5, 0.5], [1.0, 2.0]])
    got = model.predict(images, flip_test=True, method="dark", blur_kernel=3, center=center, scale=scale)
    with torch.no_grad():
        heatmaps, flipped = model(images), model(images.flip(3))
    expected = model.codec.decode(heatmaps, flipped, method="dark", blur_kernel=3, center=center, scale=scale,
                                  backend="torch")
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("name", ["srpose_demo", "simple_res50"])
def test_the_flip_test_runs_the_head_once_on_both_halves(name):
    model = build_model(name, input_size=(64, 64), backend="torch").eval()
    calls = []
    model.head.register_forward_pre_hook(lambda module, args: calls.append(args[0][0].shape[0]))
    if hasattr(model.head, "final_embedding"):  # the SR heads predict through final_embedding, not forward
        final_embedding = model.head.final_embedding
        model.head.final_embedding = lambda feats: calls.append(feats[0].shape[0]) or final_embedding(feats)
    model.predict(torch.randn(3, 3, 64, 64), flip_test=True)
    assert calls == [6]  # one call on the 3 crops and their 3 mirror images


def test_one_backend_setting_reaches_the_sr_head_the_loss_and_the_decode(monkeypatch):
    calls = record_backends(monkeypatch)
    model = build_model("srpose_demo", input_size=(64, 64), backend="cuda").train()
    assert model.backend == "cuda"
    outs = model(torch.randn(2, 3, 64, 64))
    model.loss(outs, {"keypoints": torch.rand(2, 17, 2) * 60, "target_weight": torch.ones(2, 17)})
    model.predict(torch.randn(2, 3, 64, 64))
    assert calls == [("sr_head", "cuda")] * 4 + [("multi_stage_loss", "cuda"), ("sr_head_decode", "cuda")]

    calls.clear()
    model.set_backend("triton")  # read at call time: nothing was frozen at construction
    model.train()(torch.randn(1, 3, 64, 64))
    model.predict(torch.randn(1, 3, 64, 64), backend="torch")  # one call's override
    assert calls == [("sr_head", "triton")] * 4 + [("sr_head_decode", "torch")]

    calls.clear()
    simple = build_model("simple_res50", input_size=(64, 64), backend="cpp")
    simple.predict(torch.randn(1, 3, 64, 64), flip_test=False)
    assert calls == [("decode_heatmaps", "cpp")]


def test_a_bad_backend_is_refused_when_set():
    with pytest.raises(ValueError, match="backend must be one of"):
        build_model("srpose_demo", backend="opencl")
    with pytest.raises(ValueError, match="backend must be one of"):
        build_model("srpose_demo").set_backend("gpu")


def test_update_codec_changes_what_the_loss_trains_on():
    torch.manual_seed(5)
    model = build_model("simple_res50", input_size=(64, 64), backend="torch").train()
    outs = model(torch.randn(2, 3, 64, 64))
    batch = {"keypoints": torch.rand(2, 17, 2) * 60 + 0.3, "target_weight": torch.ones(2, 17)}
    msra = model.loss(outs, batch)
    model.update_codec(target_method="unbiased")
    assert model.codec.target_method == "unbiased" and model.loss(outs, batch) != msra
    with pytest.raises(ValueError, match="target_method"):
        model.update_codec(target_method="gauss")


def test_a_head_without_a_codec_says_so():
    model = build_model("srpose_demo", input_size=(64, 64))
    model.head.codec = None
    with pytest.raises(ValueError, match="has no codec"):
        model.predict(torch.randn(1, 3, 64, 64))


def test_codec_fields_round_trip_through_the_model():
    model = build_model("srpose_demo")
    assert isinstance(model.codec, HeatmapCodec)
    assert model.input_size == model.codec.input_size == (128, 96) and model.heatmap_size == (128, 96)
