"""HRNet (official / mmpose layout) returning the parallel branch maps, finest first.

Parameter names follow the official code (conv1, bn1, conv2, bn2, layer1, transition1..3,
stage2..4 as sequences of modules with `branches` and `fuse_layers`), which mmpose and timm share,
so their ImageNet checkpoints load key for key. Identity stands where the official code keeps None:
it has no parameters, so the keys are the same.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from .resnet import BasicBlock, Bottleneck, conv3x3, make_layer


def _fuse_down(in_channels: int, out_channels: int, steps: int) -> nn.Sequential:
    """`steps` stride-2 3x3 convs with BN; ReLU on all but the last (the sum is activated later)."""
    convs = []
    for step in range(steps):
        last = step == steps - 1
        out = out_channels if last else in_channels
        layers = [conv3x3(in_channels, out, stride=2), nn.BatchNorm2d(out)]
        if not last:
            layers.append(nn.ReLU(inplace=True))
        convs.append(nn.Sequential(*layers))
    return nn.Sequential(*convs)


def _fuse_up(in_channels: int, out_channels: int, steps: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.Upsample(scale_factor=2 ** steps, mode="nearest"),
    )


FuseBuilder = Callable[[int, int, int], nn.Module]  # (in channels, out channels, scale steps)
SizeMatcher = Callable[[torch.Tensor, torch.Size], torch.Tensor]


def fuse_layers(channels: Sequence[int], outputs: int, up: FuseBuilder, down: FuseBuilder) -> nn.ModuleList:
    """Row i of the first `outputs` rows brings each branch j to branch i: `up` from coarser branches,
    Identity for itself (the official code's None: no parameters, same keys), `down` from finer ones."""
    rows = nn.ModuleList()
    for i in range(outputs):
        row = nn.ModuleList()
        for j, c in enumerate(channels):
            if j > i:
                row.append(up(c, channels[i], j - i))
            elif j == i:
                row.append(nn.Identity())
            else:
                row.append(down(c, channels[i], i - j))
        rows.append(row)
    return rows


def fuse(xs: list[torch.Tensor], rows: nn.ModuleList, match_size: SizeMatcher) -> list[torch.Tensor]:
    """ReLU of each row's sum, in branch order; `match_size` fits an upsampled map to the row's size."""
    outs = []
    for i, row in enumerate(rows):
        total = None
        for j, layer in enumerate(row):
            y = layer(xs[j])
            if j > i:
                y = match_size(y, xs[i].shape[-2:])
            total = y if total is None else total + y
        outs.append(total.relu())
    return outs


def _crop(y: torch.Tensor, size: torch.Size) -> torch.Tensor:
    # Odd sizes: the coarse map came from ceil-halving, so 2^k upsampling overshoots by at most
    # 2^k - 1; cropping keeps coarse pixel p over fine pixel 2^k p.
    return y[..., :size[0], :size[1]]


class HRModule(nn.Module):
    """Parallel basic-block branches, then every output branch sums all inputs brought to its scale."""

    def __init__(self, channels: Sequence[int], num_blocks: int, multiscale_output: bool = True):
        super().__init__()
        self.branches = nn.ModuleList(make_layer(BasicBlock, c, c, num_blocks) for c in channels)
        outputs = len(channels) if multiscale_output else 1
        self.fuse_layers = fuse_layers(channels, outputs, _fuse_up, _fuse_down)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        return fuse([branch(x) for branch, x in zip(self.branches, xs)], self.fuse_layers, _crop)


def _transition(in_channels: Sequence[int], out_channels: Sequence[int]) -> nn.ModuleList:
    """Adapt existing branches (3x3 conv if the width changes) and open new ones from the coarsest."""
    layers = nn.ModuleList()
    for i, out in enumerate(out_channels):
        if i < len(in_channels):
            if in_channels[i] == out:
                layers.append(nn.Identity())
            else:
                layers.append(nn.Sequential(conv3x3(in_channels[i], out), nn.BatchNorm2d(out), nn.ReLU(inplace=True)))
        else:
            steps = []
            for step in range(i + 1 - len(in_channels)):
                source = in_channels[-1]
                target = out if step == i - len(in_channels) else source
                steps.append(nn.Sequential(conv3x3(source, target, stride=2), nn.BatchNorm2d(target),
                                           nn.ReLU(inplace=True)))
            layers.append(nn.Sequential(*steps))
    return layers


ModuleFactory = Callable[[list[int], bool], nn.Module]  # (branch channels, multiscale output) -> module


class HighResolutionBackbone(nn.Module):
    """What HRNet and HRFormer share: the stem (two stride-2 3x3 convs with BN and ReLU, then `layer1`
    of bottlenecks), transition1..3 and stage2..4 (sequences of multi-branch modules), and the forward
    pass, which returns the branch maps finest first. Subclasses call `_build` with their modules."""

    def _build(self, *, in_channels: int, stem_channels: int, stem_blocks: int,
               stage_channels: Sequence[list[int]], num_modules: Sequence[int], make_module: ModuleFactory,
               multiscale_output: bool) -> None:
        """`make_module(channels, multiscale)` is called for each module in order (stage 2 first);
        only the last module of stage 4 is single-scale, and only when `multiscale_output` is False."""
        self.multiscale_output = multiscale_output
        self.conv1 = conv3x3(in_channels, stem_channels, stride=2)
        self.bn1 = nn.BatchNorm2d(stem_channels)
        self.conv2 = conv3x3(stem_channels, stem_channels, stride=2)
        self.bn2 = nn.BatchNorm2d(stem_channels)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = make_layer(Bottleneck, stem_channels, stem_channels, stem_blocks)
        previous = [stem_channels * Bottleneck.expansion]
        for stage, channels, count in zip((2, 3, 4), stage_channels, num_modules):
            self.add_module(f"transition{stage - 1}", _transition(previous, channels))
            modules = [make_module(channels, multiscale_output or stage < 4 or index < count - 1)
                       for index in range(count)]
            self.add_module(f"stage{stage}", nn.Sequential(*modules))
            previous = channels
        self.out_channels = tuple(previous) if multiscale_output else (previous[0],)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        xs = [self.layer1(x)]
        for transition, stage in ((self.transition1, self.stage2), (self.transition2, self.stage3),
                                  (self.transition3, self.stage4)):
            # Existing branches pass through their own layer; new ones grow from the coarsest.
            xs = [layer(xs[i] if i < len(xs) else xs[-1]) for i, layer in enumerate(transition)]
            xs = stage(xs)
        return xs


class HRNet(HighResolutionBackbone):
    """HRNet-W`width`.

    num_blocks: blocks per branch in stages 1..4 (stage 1 is `layer1`, bottlenecks).
    num_modules: HRModules in stages 2..4 (stage 1 is always one layer).
    multiscale_output: the last module of stage 4 fuses to all four branches and `forward` returns
    them finest first; otherwise it fuses to branch 0 only and `forward` returns `[x0]`.
    stem_channels: width of the stem and of layer1's bottlenecks (64 in every published HRNet;
    smaller only for the CPU demo).
    """

    def __init__(self, width: int = 32, multiscale_output: bool = True, *, in_channels: int = 3,
                 stem_channels: int = 64, num_modules: Sequence[int] = (1, 4, 3),
                 num_blocks: Sequence[int] = (4, 4, 4, 4)):
        super().__init__()
        if len(num_modules) != 3 or len(num_blocks) != 4:
            raise ValueError(f"HRNet needs num_modules for stages 2..4 and num_blocks for stages 1..4, "
                             f"got {tuple(num_modules)} and {tuple(num_blocks)}")
        if min(num_modules) < 1 or min(num_blocks) < 1:
            raise ValueError(f"HRNet needs at least one module and block per stage, got {tuple(num_modules)}, "
                             f"{tuple(num_blocks)}")
        self.width = width
        self._build(in_channels=in_channels, stem_channels=stem_channels, stem_blocks=num_blocks[0],
                    stage_channels=[[width * 2 ** b for b in range(stage)] for stage in (2, 3, 4)],
                    num_modules=num_modules,
                    make_module=lambda channels, multiscale: HRModule(channels, num_blocks[len(channels) - 1],
                                                                      multiscale_output=multiscale),
                    multiscale_output=multiscale_output)
