"""HRFormer-S: the original's key names and counts (SPEC.md section 7), its quirks, its window attention
against the original's formulation, fusion, drop path, init, checkpoints in the original and ImageNet
layouts, and the three zoo models built on it."""
from __future__ import annotations

import math
import sys
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F

from srpose_fast.models import build_model
from srpose_fast.models.backbones import HRFormer, build_backbone, load_pretrained
from srpose_fast.models.backbones.hrformer import DropPath, HRFormerModule, LocalWindowAttention

pytestmark = pytest.mark.usefixtures("single_thread")

# HRFormer-S as SRPose configures it (hrt_small_srpose_coco_256x192.py).
CHANNELS = (32, 64, 128, 256)
HEADS = (1, 2, 4, 8)
MODULES = {2: 1, 3: 4, 4: 2}  # stage -> modules; 2 blocks per branch
WINDOW = 7
MLP_RATIO = 4


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def hrformer_s() -> HRFormer:
    torch.manual_seed(0)
    return build_backbone("hrformer_s")


# ------------------------------------------------------------ the original's key names, from its rules

def _bn(prefix: str, channels: int) -> dict:
    keys = {f"{prefix}.{name}": (channels,) for name in ("weight", "bias", "running_mean", "running_var")}
    return {**keys, f"{prefix}.num_batches_tracked": ()}


def _conv(prefix: str, out: int, inp: int, kernel: int, *, groups: int = 1, bias: bool = False) -> dict:
    keys = {f"{prefix}.weight": (out, inp // groups, kernel, kernel)}
    return {**keys, f"{prefix}.bias": (out,)} if bias else keys


def _bottleneck(prefix: str, inp: int, planes: int, *, depthwise: bool = False) -> dict:
    """mmcv / HRFormer Bottleneck: conv1 1x1, conv2 3x3 (depthwise in the ImageNet head's), conv3 1x1 x4."""
    keys = {**_conv(f"{prefix}.conv1", planes, inp, 1), **_bn(f"{prefix}.bn1", planes),
            **_conv(f"{prefix}.conv2", planes, planes, 3, groups=planes if depthwise else 1),
            **_bn(f"{prefix}.bn2", planes), **_conv(f"{prefix}.conv3", 4 * planes, planes, 1),
            **_bn(f"{prefix}.bn3", 4 * planes)}
    if inp != 4 * planes:
        keys |= {**_conv(f"{prefix}.downsample.0", 4 * planes, inp, 1), **_bn(f"{prefix}.downsample.1", 4 * planes)}
    return keys


def _transformer_block(prefix: str, c: int, heads: int) -> dict:
    """GeneralTransformerBlock: attn (InterlacedPoolAttention) . attn (MHA_ with RPE), norm1/2, mlp (MlpDWBN)."""
    attn = f"{prefix}.attn.attn"
    keys = {f"{attn}.relative_position_bias_table": ((2 * WINDOW - 1) ** 2, heads),
            f"{attn}.relative_position_index": (WINDOW ** 2, WINDOW ** 2)}
    for proj in ("k_proj", "v_proj", "q_proj", "out_proj"):
        keys |= {f"{attn}.{proj}.weight": (c, c), f"{attn}.{proj}.bias": (c,)}
    for norm in ("norm1", "norm2"):
        keys |= {f"{prefix}.{norm}.weight": (c,), f"{prefix}.{norm}.bias": (c,)}
    hidden = MLP_RATIO * c
    keys |= {**_conv(f"{prefix}.mlp.fc1", hidden, c, 1, bias=True), **_bn(f"{prefix}.mlp.norm1", hidden),
             **_conv(f"{prefix}.mlp.dw3x3", hidden, hidden, 3, groups=hidden, bias=True),
             **_bn(f"{prefix}.mlp.norm2", hidden), **_conv(f"{prefix}.mlp.fc2", c, hidden, 1, bias=True),
             **_bn(f"{prefix}.mlp.norm3", c)}
    return keys


def _fuse(prefix: str, channels: tuple[int, ...], outputs: int) -> dict:
    """Row i, column j: j > i 1x1 conv + BN (then upsampling); j < i steps of dw3x3 s2 + BN + 1x1 + BN."""
    keys = {}
    for i in range(outputs):
        for j, cj in enumerate(channels):
            at = f"{prefix}.fuse_layers.{i}.{j}"
            if j > i:
                keys |= {**_conv(f"{at}.0", channels[i], cj, 1), **_bn(f"{at}.1", channels[i])}
            for step in range(i - j):
                out = channels[i] if step == i - j - 1 else cj
                keys |= {**_conv(f"{at}.{step}.0", cj, cj, 3, groups=cj), **_bn(f"{at}.{step}.1", cj),
                         **_conv(f"{at}.{step}.2", out, cj, 1), **_bn(f"{at}.{step}.3", out)}
    return keys


def original_backbone_keys(multiscale_output: bool = True) -> dict[str, tuple[int, ...]]:
    """Every state-dict key of SRPose's HRT backbone with its shape, from the construction rules of
    `hrt.py` and `modules/` (stem, layer1, transitions, stages of modules with branches and fuse rows)."""
    keys = {**_conv("conv1", 64, 3, 3), **_bn("bn1", 64), **_conv("conv2", 64, 64, 3), **_bn("bn2", 64)}
    keys |= _bottleneck("layer1.0", 64, 64) | _bottleneck("layer1.1", 256, 64)
    keys |= {**_conv("transition1.0.0", 32, 256, 3), **_bn("transition1.0.1", 32),
             **_conv("transition1.1.0.0", 64, 256, 3), **_bn("transition1.1.0.1", 64)}
    for stage, modules in MODULES.items():
        if stage > 2:  # a new branch from the previous stage's coarsest
            new = f"transition{stage - 1}.{stage - 1}.0"
            keys |= {**_conv(f"{new}.0", CHANNELS[stage - 1], CHANNELS[stage - 2], 3),
                     **_bn(f"{new}.1", CHANNELS[stage - 1])}
        channels = CHANNELS[:stage]
        for m in range(modules):
            prefix = f"stage{stage}.{m}"
            for b, c in enumerate(channels):
                for block in range(2):
                    keys |= _transformer_block(f"{prefix}.branches.{b}.{block}", c, HEADS[b])
            last = stage == 4 and m == modules - 1
            keys |= _fuse(prefix, channels, stage if multiscale_output or not last else 1)
    return keys


def _is_buffer(key: str) -> bool:
    return key.endswith(("running_mean", "running_var", "num_batches_tracked", "relative_position_index"))


def imagenet_head_keys() -> dict[str, tuple[int, ...]]:
    """HRFormer's ImageNet classification head (cls/models/hrt.py `_make_head`), dropped by the pose model."""
    keys = {}
    head = (32, 64, 128, 256)
    for i, (c, planes) in enumerate(zip(CHANNELS, head)):
        keys |= _bottleneck(f"incre_modules.{i}.0", c, planes, depthwise=True)
    for i in range(3):
        inp, out = 4 * head[i], 4 * head[i + 1]
        keys |= {**_conv(f"downsamp_modules.{i}.0", inp, inp, 3, groups=inp, bias=True),
                 **_bn(f"downsamp_modules.{i}.1", inp), **_conv(f"downsamp_modules.{i}.2", out, inp, 1, bias=True),
                 **_bn(f"downsamp_modules.{i}.3", out)}
    keys |= {**_conv("final_layer.0", 2048, 1024, 1, bias=True), **_bn("final_layer.1", 2048),
             "classifier.weight": (1000, 2048), "classifier.bias": (1000,)}
    return keys


def random_tensors(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> OrderedDict:
    """Distinct random values for every key (int64 where the original stores integers)."""
    gen = torch.Generator().manual_seed(seed)
    out = OrderedDict()
    for key, shape in shapes.items():
        if key.endswith(("num_batches_tracked", "relative_position_index")):
            out[key] = torch.randint(0, 169, shape, generator=gen)
        else:
            out[key] = torch.rand(shape, generator=gen) + 0.5
    return out


# ---------------------------------------------------------------------------------- counts and names

def test_parameter_counts_match_spec(hrformer_s):
    assert count(hrformer_s) == 7_891_050 and len(hrformer_s.state_dict()) == 2_212
    parts = {"stem": 38_848, "layer1": 145_408, "transition1": 221_376, "stage2": 142_166,
             "transition2": 73_984, "stage3": 2_330_744, "transition3": 295_424, "stage4": 4_643_100}
    measured = dict.fromkeys(parts, 0)
    for name, param in hrformer_s.named_parameters():
        top = name.split(".")[0]
        measured["stem" if top in ("conv1", "bn1", "conv2", "bn2") else top] += param.numel()
    assert measured == parts
    rpe = sum(p.numel() for n, p in hrformer_s.named_parameters() if n.endswith("relative_position_bias_table"))
    assert rpe == 20_618
    single = build_backbone("hrformer_s", multiscale_output=False)
    assert count(single) == 7_746_218 and single.out_channels == (32,)


def test_builds_on_the_meta_device(hrformer_s):
    """Checkpoint identification builds zoo models without memory; the drop-path rates are computed on the CPU."""
    with torch.device("meta"):
        model = build_backbone("hrformer_s")
    shapes = {key: value.shape for key, value in model.state_dict().items()}
    assert shapes == {key: value.shape for key, value in hrformer_s.state_dict().items()}
    assert model.stage4[1].branches[3][1].drop_path.rate == pytest.approx(0.1)


@pytest.mark.parametrize("multiscale", [True, False])
def test_state_dict_has_the_original_keys_and_shapes(hrformer_s, multiscale):
    model = hrformer_s if multiscale else build_backbone("hrformer_s", multiscale_output=False)
    expected = original_backbone_keys(multiscale)
    ours = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    assert ours == expected
    assert len(expected) == (2_212 if multiscale else 2_074)
    assert sum(math.prod(shape) for key, shape in expected.items() if not _is_buffer(key)) == count(model)
    for key in ("bn1.weight", "layer1.0.downsample.0.weight", "transition1.1.0.0.weight",
                "transition3.3.0.1.running_var", "stage2.0.branches.1.0.attn.attn.relative_position_bias_table",
                "stage3.3.branches.2.1.attn.attn.q_proj.weight", "stage4.1.branches.3.1.mlp.dw3x3.bias",
                "stage4.0.fuse_layers.3.0.2.3.weight", "stage4.0.fuse_layers.0.3.1.running_mean"):
        assert key in ours, key
    assert model.state_dict()["stage2.0.branches.0.0.attn.attn.relative_position_index"].dtype == torch.int64


def test_original_layout_checkpoint_loads_strictly(tmp_path):
    """An SRPose release's layout: mmcv {meta, state_dict} with `backbone.` and `keypoint_head.` keys."""
    backbone = random_tensors(original_backbone_keys())
    state = OrderedDict((f"backbone.{key}", value) for key, value in backbone.items())
    state["keypoint_head.lr_head.0.weight"] = torch.rand(17, 256, 1, 1)
    path = tmp_path / "epoch_210.pth"
    torch.save({"meta": {"mmpose_version": "0.24.0", "epoch": 210}, "state_dict": state}, path)
    model = HRFormer()
    with pytest.warns(UserWarning, match="whole pose model"):  # pretrained= takes the backbone only
        assert load_pretrained(model, path) == ["keypoint_head.lr_head.0.weight"]
    loaded = model.state_dict()
    assert all(torch.equal(loaded[key], value) for key, value in backbone.items())


class CfgNode(dict):
    """yacs's config node, which HRFormer's (Swin-derived) training script saves next to the weights."""


CfgNode.__module__ = "yacs.config"


def test_imagenet_checkpoint_drops_the_classification_head(tmp_path, monkeypatch):
    """HRFormer's ImageNet release: {"model": the classifier's state dict, "config": its yacs config,
    ...training state}. The pose backbone takes every backbone key; the head's keys, and for a single-scale
    model the last module's fuse rows 1..3, are ignored by name. The config (a class a weights-only load
    refuses) is read as an inert placeholder."""
    backbone, head = original_backbone_keys(), imagenet_head_keys()
    values = random_tensors({**backbone, **head})
    path = tmp_path / "hrt_small.pth"
    yacs, config_module = type(sys)("yacs"), type(sys)("yacs.config")
    yacs.config, config_module.CfgNode = config_module, CfgNode
    monkeypatch.setitem(sys.modules, "yacs", yacs)
    monkeypatch.setitem(sys.modules, "yacs.config", config_module)
    torch.save({"model": values, "optimizer": {"state": {}, "param_groups": []}, "lr_scheduler": {"last_epoch": 300},
                "max_accuracy": 81.0, "epoch": 299, "config": CfgNode({"MODEL": CfgNode({"NAME": "hrt_small"})})},
               path)
    monkeypatch.delitem(sys.modules, "yacs.config")
    monkeypatch.delitem(sys.modules, "yacs")
    unused_rows = [key for key in backbone if key.startswith("stage4.1.fuse_layers.")
                   and not key.startswith("stage4.1.fuse_layers.0.")]
    for multiscale, ignored in ((True, head), (False, [*head, *unused_rows])):
        model = HRFormer(multiscale_output=multiscale)
        assert load_pretrained(model, path) == sorted(ignored)
        assert all(torch.equal(value, values[key]) for key, value in model.state_dict().items())


# ---------------------------------------------------------------------------------- quirks

def test_relative_position_bias_is_never_added(hrformer_s):
    images = torch.randn(1, 3, 64, 48)
    hrformer_s.eval()
    with torch.no_grad():
        before = hrformer_s(images)
        tables = [p for n, p in hrformer_s.named_parameters() if n.endswith("relative_position_bias_table")]
        saved = [t.clone() for t in tables]
        for table in tables:
            table.normal_(std=10.0)
        after = hrformer_s(images)
        for table, value in zip(tables, saved):
            table.copy_(value)
    assert len(tables) == 44 and all(torch.equal(a, b) for a, b in zip(before, after))
    index = hrformer_s.state_dict()["stage2.0.branches.0.0.attn.attn.relative_position_index"]
    # Swin's rule: (dy + 6) * 13 + (dx + 6) for query minus key offsets.
    assert index[0, 0] == 84 and index[0, 48] == 0 and index[48, 0] == 168 and index[8, 0] == 98


def test_only_the_unused_tables_get_no_gradient(hrformer_s):
    """Every trainable parameter receives a gradient (what DDP needs); the bias tables, never added,
    are frozen and get none, as in the original."""
    hrformer_s.train()
    try:
        outs = hrformer_s(torch.randn(2, 3, 64, 48))
        sum(o.square().mean() for o in outs).backward()
        for name, param in hrformer_s.named_parameters():
            if name.endswith("relative_position_bias_table"):
                assert not param.requires_grad and param.grad is None, name
            else:
                assert param.requires_grad and param.grad is not None, name
    finally:
        hrformer_s.zero_grad(set_to_none=True)
        hrformer_s.eval()


def _original_window_attention(module: LocalWindowAttention, x: torch.Tensor, *, mask_padding: bool = False):
    """The original's steps on [B, H, W, C]: PadBlock (ceil to the window, centred), the einops permute
    `n (qh ph) (qw pw) c -> (ph pw) (n qh qw) c`, sequence-first MultiheadAttention with q scaled after
    its projection, softmax(q k^T) v with explicit matmuls, the reverse permute and the crop."""
    mha, w = module.attn, module.window_size
    n, h, wd, c = x.shape
    pad_h, pad_w = math.ceil(h / w) * w - h, math.ceil(wd / w) * w - wd
    xp = F.pad(x, (0, 0, pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
    qh, qw = xp.shape[1] // w, xp.shape[2] // w
    tokens = xp.reshape(n, qh, w, qw, w, c).permute(2, 4, 0, 1, 3, 5).reshape(w * w, n * qh * qw, c)
    length, batch = tokens.shape[:2]
    heads, d = mha.num_heads, c // mha.num_heads
    q = F.linear(tokens, mha.q_proj.weight, mha.q_proj.bias) * d ** -0.5
    k = F.linear(tokens, mha.k_proj.weight, mha.k_proj.bias)
    v = F.linear(tokens, mha.v_proj.weight, mha.v_proj.bias)
    q, k, v = (t.reshape(length, batch * heads, d).transpose(0, 1) for t in (q, k, v))
    scores = torch.bmm(q, k.transpose(1, 2))
    if mask_padding:
        valid = F.pad(torch.ones(n, h, wd, 1, dtype=torch.bool),
                      (0, 0, pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
        valid = valid.reshape(n, qh, w, qw, w).permute(0, 1, 3, 2, 4).reshape(batch, 1, 1, length)
        scores = scores.view(batch, heads, length, length).masked_fill(~valid, float("-inf")).flatten(0, 1)
    out = torch.bmm(scores.softmax(-1), v).transpose(0, 1).reshape(length, batch, c)
    out = F.linear(out, mha.out_proj.weight, mha.out_proj.bias)
    out = out.reshape(w, w, n, qh, qw, c).permute(2, 3, 0, 4, 1, 5).reshape(n, qh * w, qw * w, c)
    return out[:, pad_h // 2:pad_h // 2 + h, pad_w // 2:pad_w // 2 + wd]


@pytest.mark.parametrize("height, width, heads", [(9, 12, 2), (8, 6, 4), (14, 7, 1)])
def test_window_attention_matches_the_original(height, width, heads):
    """scaled_dot_product_attention (scale 1 on a pre-scaled q) against explicit softmax(q k^T) v in the
    original's layout, fp32; sizes that pad (8x6 -> 14x7, as the stride-32 map at 256x192) and one that
    does not. Padded tokens are keys: masking them changes the result, so the match shows no mask."""
    torch.manual_seed(0)
    module = LocalWindowAttention(32, heads, WINDOW)
    x = torch.randn(2, height, width, 32)
    with torch.no_grad():
        ours = module(x)
        original = _original_window_attention(module, x)
        masked = _original_window_attention(module, x, mask_padding=True)
    assert ours.shape == x.shape
    torch.testing.assert_close(ours, original, rtol=1e-5, atol=1e-5)
    padded = height % WINDOW or width % WINDOW
    assert (ours - masked).abs().max() > 1e-3 if padded else torch.allclose(ours, masked, atol=1e-5)


def test_drop_path_rates_follow_the_block_slots(hrformer_s):
    rates = torch.linspace(0, 0.1, 14).tolist()
    slot = 0
    for stage in (hrformer_s.stage2, hrformer_s.stage3, hrformer_s.stage4):
        for module in stage:
            for branch in module.branches:
                for position, block in enumerate(branch):
                    rate = rates[slot + position]
                    if rate == 0:
                        assert isinstance(block.drop_path, torch.nn.Identity)
                    else:
                        assert isinstance(block.drop_path, DropPath) and block.drop_path.rate == rate
            slot += 2
    assert slot == 14 and rates[1] == pytest.approx(0.0077, abs=1e-4) and rates[-2] == pytest.approx(0.0923, abs=1e-4)


def test_drop_path_zeroes_whole_samples_and_rescales_the_rest():
    drop = DropPath(0.25)
    x = torch.rand(4000, 3, 2, 2) + 1.0
    assert drop.eval()(x) is x
    torch.manual_seed(0)
    y = drop.train()(x)
    kept = (y != 0).flatten(1)
    assert torch.equal(kept.all(1), kept.any(1))  # a sample is dropped or kept as a whole
    torch.testing.assert_close(y[kept.all(1)], x[kept.all(1)] / 0.75)
    assert 0.22 < 1 - kept.all(1).float().mean() < 0.28


def test_fusion_upsamples_bilinearly_then_resizes():
    """Blocks made identity (zero attention output, zero last FFN BN): fuse rows by hand at odd sizes."""
    torch.manual_seed(0)
    module = HRFormerModule([4, 6, 8], [1, 2, 2], [0.0, 0.0]).eval()
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if name.endswith("running_var"):
                tensor.uniform_(0.5, 1.5)
            elif name.startswith("fuse_layers.") and tensor.is_floating_point():
                tensor.normal_(std=0.5)
            if ".attn.attn.out_proj." in name or name.endswith((".mlp.norm3.weight", ".mlp.norm3.bias")):
                tensor.zero_()
    xs = [torch.randn(1, 4, 9, 7), torch.randn(1, 6, 5, 4), torch.randn(1, 8, 3, 2)]
    with torch.no_grad():
        outs = module([x.clone() for x in xs])

    # The convolutions' wiring by hand (stride, groups, padding); the BatchNorms are torch's, in eval mode.
    def up(j, i):
        conv, norm = module.fuse_layers[i][j][0], module.fuse_layers[i][j][1]
        y = F.interpolate(norm(F.conv2d(xs[j], conv.weight)), scale_factor=2 ** (j - i), mode="bilinear",
                          align_corners=False)
        return F.interpolate(y, size=xs[i].shape[-2:], mode="bilinear", align_corners=False)

    def down(j, i):
        x = xs[j]
        for step, (depthwise, norm, pointwise, norm_out, *relu) in enumerate(module.fuse_layers[i][j]):
            x = norm(F.conv2d(x, depthwise.weight, stride=2, padding=1, groups=x.shape[1]))
            x = norm_out(F.conv2d(x, pointwise.weight))
            assert bool(relu) == (step < i - j - 1)
            x = x.relu() if relu else x
        return x

    with torch.no_grad():
        expected = [(xs[0] + up(1, 0) + up(2, 0)).relu(), (down(0, 1) + xs[1] + up(2, 1)).relu(),
                    (down(0, 2) + down(1, 2) + xs[2]).relu()]
    for out, ref in zip(outs, expected):
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_initialisation(hrformer_s):
    block = hrformer_s.stage4[1].branches[3][1]
    assert abs(block.mlp.fc1.weight.std().item() - 0.001) < 1e-4 and not block.mlp.fc1.bias.any()
    assert abs(hrformer_s.transition3[3][0][0].weight.std().item() - 0.001) < 1e-4
    assert bool((block.mlp.norm3.weight == 1).all()) and not block.mlp.norm3.bias.any()
    assert block.norm1.eps == 1e-6 and bool((block.norm1.weight == 1).all())
    # Linear keeps torch's default (uniform within 1 / sqrt(fan_in)), not the convolutions' N(0, 0.001).
    q = block.attn.attn.q_proj.weight
    assert q.abs().max() <= 256 ** -0.5 and q.std() > 0.01
    table = block.attn.attn.relative_position_bias_table
    assert abs(table.std().item() - 0.02) < 0.004


@pytest.mark.parametrize("size", [(64, 48), (67, 45)])
def test_outputs_finest_first_at_strides_4_to_32(hrformer_s, size):
    hrformer_s.eval()
    with torch.no_grad():
        outs = hrformer_s(torch.randn(1, 3, *size))
    assert [tuple(o.shape) for o in outs] == [(1, c, math.ceil(size[0] / s), math.ceil(size[1] / s))
                                               for c, s in zip(CHANNELS, (4, 8, 16, 32))]


# ---------------------------------------------------------------------------------- the zoo

@pytest.mark.parametrize("name, backbone, head, final", [
    ("srpose_hrformer_s", 7_891_050, 966_789, (256, 192)),
    ("sr_hrformer_s", 7_746_218, 90_644, (256, 192)),
    ("simple_hrformer_s", 7_746_218, 561, (64, 48)),
])
def test_zoo_models(name, backbone, head, final):
    torch.manual_seed(0)
    model = build_model(name).eval()
    assert (count(model.backbone), count(model.head)) == (backbone, head)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 256, 192)).shape == (1, 17, *final)


def test_srpose_hrformer_s_trains_with_five_heatmaps():
    model = build_model("srpose_hrformer_s", input_size=(128, 96)).train()
    outs = model(torch.randn(2, 3, 128, 96))
    assert [tuple(o.shape) for o in outs] == [(2, 17, 4, 3), (2, 17, 32, 24), (2, 17, 32, 24), (2, 17, 32, 24),
                                              (2, 17, 128, 96)]
