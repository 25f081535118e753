"""HRFormer (High-Resolution Transformer) as SRPose's `hrt.py` builds it (SPEC.md section 7).

HRNet's multi-branch layout with transformer blocks in the branches: each block runs multi-head
self-attention inside non-overlapping 7x7 windows, then a depthwise-conv FFN. Parameter names are the
original's (conv1, bn1, layer1, transition1..3, stage2..4 as sequences of modules with `branches` and
`fuse_layers`; blocks with attn.attn.{q,k,v,out}_proj, norm1, norm2 and mlp.{fc1,norm1,dw3x3,norm2,
fc2,norm3}), so SRPose's checkpoints (`backbone.*`) and HRFormer's ImageNet weights load key for key.

Kept as the original runs them:
- The relative-position bias tables and their index buffers exist (they are in every checkpoint)
  but the bias is never added to the attention scores; the original comments the addition out.
- Maps are zero-padded to multiples of the window, centred, after the LayerNorm; padded tokens
  are attended like any other (no mask).
- q is scaled by head_dim ** -0.5 after its projection.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..heads.simple import init_deconv_head
from .hrnet import HighResolutionBackbone, fuse, fuse_layers

LAYER_NORM_EPS = 1e-6
RPE_INIT_STD = 0.02


def _center_padding(size: int, window: int) -> tuple[int, int]:
    """(before, after) zeros that bring `size` up to a multiple of `window`, the odd one after."""
    pad = -size % window
    return pad // 2, pad - pad // 2


class WindowMultiheadAttention(nn.Module):
    """Multi-head self-attention over the tokens of each window: [windows, L, C] -> [windows, L, C].

    Separate q/k/v projections (the original's `MultiheadAttention` layout), q scaled after its
    projection, no mask. The relative-position bias table [(2w-1)^2, heads] and its index buffer
    [w^2, w^2] are the original's, but the bias is not added (as upstream, HRFormer issue #32), so the
    table gets no gradient; it is frozen so that DistributedDataParallel does not wait for one (the
    original's DDP ran with find_unused_parameters).
    """

    def __init__(self, channels: int, num_heads: int, window_size: int):
        super().__init__()
        if channels % num_heads:
            raise ValueError(f"attention channels ({channels}) must be divisible by num_heads ({num_heads})")
        self.num_heads = num_heads
        self.head_dim = channels // num_heads
        self.scale = self.head_dim ** -0.5
        # Registration order gives the original's state-dict order.
        self.k_proj = nn.Linear(channels, channels)
        self.v_proj = nn.Linear(channels, channels)
        self.q_proj = nn.Linear(channels, channels)
        self.out_proj = nn.Linear(channels, channels)
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window_size - 1) ** 2, num_heads), requires_grad=False)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=RPE_INIT_STD)
        self.register_buffer("relative_position_index", relative_position_index(window_size))

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        windows, length, _ = x.shape
        return x.view(windows, length, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = self._heads(self.q_proj(x) * self.scale)
        k = self._heads(self.k_proj(x))
        v = self._heads(self.v_proj(x))
        # softmax(q k^T) v: q already carries the scale, so the kernel's own is 1.
        out = F.scaled_dot_product_attention(q, k, v, scale=1.0)
        return self.out_proj(out.transpose(1, 2).flatten(2))


def relative_position_index(window_size: int) -> torch.Tensor:
    """[w^2, w^2] int64: row of the bias table for each (query, key) pair of a window (Swin's rule)."""
    coords = torch.stack(torch.meshgrid(torch.arange(window_size), torch.arange(window_size), indexing="ij"))
    coords = coords.flatten(1)
    relative = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window_size - 1)
    return relative[..., 0] * (2 * window_size - 1) + relative[..., 1]


class LocalWindowAttention(nn.Module):
    """Pad the map to whole windows (centred zeros), attend within each window, undo both.

    [B, H, W, C] -> [B, H, W, C]; the attention module is `attn` (keys `attn.attn.*` in a block).
    """

    def __init__(self, channels: int, num_heads: int, window_size: int):
        super().__init__()
        self.window_size = window_size
        self.attn = WindowMultiheadAttention(channels, num_heads, window_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, height, width, channels = x.shape
        w = self.window_size
        top, bottom = _center_padding(height, w)
        left, right = _center_padding(width, w)
        x = F.pad(x, (0, 0, left, right, top, bottom))
        rows, cols = (height + top + bottom) // w, (width + left + right) // w
        windows = (x.view(batch, rows, w, cols, w, channels).permute(0, 1, 3, 2, 4, 5)
                   .reshape(batch * rows * cols, w * w, channels))
        out = self.attn(windows)
        out = (out.view(batch, rows, cols, w, w, channels).permute(0, 1, 3, 2, 4, 5)
               .reshape(batch, rows * w, cols * w, channels))
        return out[:, top:top + height, left:left + width]


class ConvFFN(nn.Module):
    """1x1 C -> hC, BN, GELU, depthwise 3x3, BN, GELU, 1x1 hC -> C, BN, GELU (the original's MlpDWBN)."""

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.norm1 = nn.BatchNorm2d(hidden)
        self.dw3x3 = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.norm2 = nn.BatchNorm2d(hidden)
        self.fc2 = nn.Conv2d(hidden, channels, 1)
        self.norm3 = nn.BatchNorm2d(channels)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.norm1(self.fc1(x)))
        x = self.act(self.norm2(self.dw3x3(x)))
        return self.act(self.norm3(self.fc2(x)))


class DropPath(nn.Module):
    """Stochastic depth: in training, zero a sample's residual branch with probability `rate` and
    scale the kept ones by 1 / (1 - rate)."""

    def __init__(self, rate: float):
        super().__init__()
        self.rate = rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        keep = 1.0 - self.rate
        mask = torch.rand((x.shape[0],) + (1,) * (x.ndim - 1), dtype=x.dtype, device=x.device) >= self.rate
        return x.div(keep) * mask

    def extra_repr(self) -> str:
        return f"rate={self.rate}"


class TransformerBlock(nn.Module):
    """On [B, C, H, W]: tokens x += DropPath(Attn(LN(x))), then x += DropPath(FFN(LN(x)))."""

    def __init__(self, channels: int, num_heads: int, window_size: int = 7, mlp_ratio: int = 4,
                 drop_path: float = 0.0):
        super().__init__()
        self.attn = LocalWindowAttention(channels, num_heads, window_size)
        self.norm1 = nn.LayerNorm(channels, eps=LAYER_NORM_EPS)
        self.norm2 = nn.LayerNorm(channels, eps=LAYER_NORM_EPS)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.mlp = ConvFFN(channels, channels * mlp_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        tokens = x.flatten(2).transpose(1, 2)  # [B, HW, C]
        attended = self.attn(self.norm1(tokens).reshape(batch, height, width, channels))
        tokens = tokens + self.drop_path(attended.reshape(batch, height * width, channels))
        mapped = self.norm2(tokens).transpose(1, 2).reshape(batch, channels, height, width)
        tokens = tokens + self.drop_path(self.mlp(mapped).flatten(2).transpose(1, 2))
        return tokens.transpose(1, 2).reshape(batch, channels, height, width)


def _resize(y: torch.Tensor, size: torch.Size) -> torch.Tensor:
    """Upsampled odd sizes overshoot; the original resizes bilinearly (the identity at equal size)."""
    return y if y.shape[-2:] == size else F.interpolate(y, size=size, mode="bilinear", align_corners=False)


def _fuse_up(in_channels: int, out_channels: int, steps: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.Upsample(scale_factor=2 ** steps, mode="bilinear", align_corners=False),
    )


def _fuse_down(in_channels: int, out_channels: int, steps: int) -> nn.Sequential:
    """`steps` of [depthwise 3x3 stride 2, BN, 1x1, BN]; the last maps to `out_channels` and has no ReLU."""
    convs = []
    for step in range(steps):
        last = step == steps - 1
        out = out_channels if last else in_channels
        layers = [nn.Conv2d(in_channels, in_channels, 3, stride=2, padding=1, groups=in_channels, bias=False),
                  nn.BatchNorm2d(in_channels), nn.Conv2d(in_channels, out, 1, bias=False), nn.BatchNorm2d(out)]
        if not last:
            layers.append(nn.ReLU(inplace=True))
        convs.append(nn.Sequential(*layers))
    return nn.Sequential(*convs)


class HRFormerModule(nn.Module):
    """Parallel transformer branches, then each output branch sums every branch brought to its scale.

    drop_paths: one rate per block position, shared by all branches.
    """

    def __init__(self, channels: Sequence[int], num_heads: Sequence[int], drop_paths: Sequence[float], *,
                 window_size: int = 7, mlp_ratio: int = 4, multiscale_output: bool = True):
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(*(TransformerBlock(c, heads, window_size, mlp_ratio, rate) for rate in drop_paths))
            for c, heads in zip(channels, num_heads))
        outputs = len(channels) if multiscale_output else 1
        self.fuse_layers = fuse_layers(channels, outputs, _fuse_up, _fuse_down)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        return fuse([branch(x) for branch, x in zip(self.branches, xs)], self.fuse_layers, _resize)


class HRFormer(HighResolutionBackbone):
    """HRFormer; the defaults are HRFormer-S as SRPose configures it.

    channels / num_heads: per branch (the stage-4 list; stage s uses the first s entries).
    num_modules: modules in stages 2..4; every branch holds `num_blocks` transformer blocks.
    drop_path_rate: the last block slot's rate; rates rise linearly from 0 over the block slots
    (num_blocks per module, modules of stages 2..4 in order) and all branches of a module share them.
    multiscale_output: the last module fuses to every branch and `forward` returns them finest first;
    otherwise it fuses to branch 0 only and `forward` returns `[x0]`.
    """

    def __init__(self, multiscale_output: bool = True, *, in_channels: int = 3,
                 channels: Sequence[int] = (32, 64, 128, 256), num_heads: Sequence[int] = (1, 2, 4, 8),
                 num_modules: Sequence[int] = (1, 4, 2), num_blocks: int = 2, window_size: int = 7,
                 mlp_ratio: int = 4, drop_path_rate: float = 0.0, stem_channels: int = 64,
                 stem_blocks: int = 2):
        super().__init__()
        if len(channels) != 4 or len(num_heads) != 4 or len(num_modules) != 3:
            raise ValueError(f"HRFormer needs 4 branch widths and head counts and 3 module counts, got "
                             f"{tuple(channels)}, {tuple(num_heads)}, {tuple(num_modules)}")
        if min(num_modules) < 1 or num_blocks < 1:
            raise ValueError(f"HRFormer needs at least one module per stage and one block per branch, got "
                             f"{tuple(num_modules)} and {num_blocks}")
        if not 0 <= drop_path_rate < 1:
            raise ValueError(f"drop_path_rate must be in [0, 1), got {drop_path_rate}")
        # float32 linspace, as the original computes it (on the CPU, so the model builds on the meta device
        # too); modules take the next `num_blocks` rates in order.
        rates = torch.linspace(0, drop_path_rate, sum(num_modules) * num_blocks, device="cpu").tolist()
        module_rates = iter([rates[i:i + num_blocks] for i in range(0, len(rates), num_blocks)])

        def make_module(branch_channels: list[int], multiscale: bool) -> HRFormerModule:
            return HRFormerModule(branch_channels, num_heads[:len(branch_channels)], next(module_rates),
                                  window_size=window_size, mlp_ratio=mlp_ratio, multiscale_output=multiscale)

        self._build(in_channels=in_channels, stem_channels=stem_channels, stem_blocks=stem_blocks,
                    stage_channels=[list(channels[:stage]) for stage in (2, 3, 4)], num_modules=num_modules,
                    make_module=make_module, multiscale_output=multiscale_output)
        # The original's (mmpose's) init: convolutions N(0, 0.001) with zero bias, BatchNorm 1 / 0;
        # Linear and LayerNorm keep torch's.
        init_deconv_head(self)
