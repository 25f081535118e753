"""The top-down heatmap codec: what a model's outputs mean, and every conversion between pixel units.

Three kinds of pixels meet in a top-down model:
- input pixels: the crop the network sees, `input_size` (H, W);
- heatmap pixels: each train-mode output's grid, `heatmap_sizes`; the last (the largest) is the
  final heatmap, the one the loss makes its targets at and the decoders read;
- image pixels: the original image, reached through a crop's `center` and `scale` (units of
  `PIXEL_STD` pixels, mmpose's convention).

`encode` takes keypoints in input pixels and gives what `ops.multi_stage_loss` takes; `decode` and
`decode_embeddings` give keypoints in image pixels (in input pixels when no center/scale is given).
Nothing outside this file converts between these units for a model.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch

from .conventions import DECODE_METHODS, PIXEL_STD, TARGET_METHODS


def _size(value, name: str) -> tuple[int, int]:
    size = tuple(int(v) for v in value)
    if len(size) != 2 or any(v < 1 or v != w for v, w in zip(size, value)):
        raise ValueError(f"HeatmapCodec: {name} must be (H, W) with positive ints, got {value!r}")
    return size


def _udp_sizes(*sizes: Sequence[int]) -> None:
    if any(int(v) < 2 for size in sizes for v in size):
        raise ValueError(f"UDP pixel grids need at least 2x2 pixels, got {[tuple(s) for s in sizes]}")


def rescale_keypoints(keypoints: torch.Tensor, from_size: Sequence[int], to_size: Sequence[int], *,
                      udp: bool = False) -> torch.Tensor:
    """Keypoints (..., 2) (x, y) from the pixels of a (H, W) grid `from_size` to those of `to_size` covering the
    same area, float32: x * to_W / from_W (likewise y), or with `udp` (mmpose's unbiased data processing: the
    grids' first and last pixel centres coincide) x * (to_W - 1) / (from_W - 1)."""
    keypoints = keypoints.float()
    if udp:
        _udp_sizes(from_size, to_size)
        ratio = [(to_size[1] - 1) / (from_size[1] - 1), (to_size[0] - 1) / (from_size[0] - 1)]
    else:
        ratio = [to_size[1] / from_size[1], to_size[0] / from_size[0]]
    return keypoints * torch.tensor(ratio, dtype=torch.float32, device=keypoints.device)


@dataclass(frozen=True)
class HeatmapCodec:
    """A top-down heatmap model's geometry, targets and decoding.

    Args:
        input_size: (H, W) of the crops.
        heatmap_sizes: (H, W) of each train-mode output, in output order (SRPose at 256x192: LR 8x6, three
            64x48, the final 256x192; the simple head: one 64x48). The last is the largest, and every size
            divides it (the loss pools the final target down to each).
        sigma: target sigma in final-heatmap pixels.
        stage_weights: the loss weight of each output.
        flip_indices: the keypoint set's left/right permutation, for the flip test.
        target_method: "msra" | "unbiased" | "udp" (`codecs.targets`).
        decode_method: the default of `decode`: "argmax" | "shift" | "dark" | "dark_udp".
        blur_kernel: the DARK methods' default odd blur size.
    """

    input_size: tuple[int, int]
    heatmap_sizes: tuple[tuple[int, int], ...]
    sigma: float
    stage_weights: tuple[float, ...]
    flip_indices: tuple[int, ...]
    target_method: str = "msra"
    decode_method: str = "shift"
    blur_kernel: int = 11

    def __post_init__(self):
        set_ = object.__setattr__  # frozen: normalise the fields once, here
        set_(self, "input_size", _size(self.input_size, "input_size"))
        set_(self, "heatmap_sizes", tuple(_size(s, "each of heatmap_sizes") for s in self.heatmap_sizes))
        set_(self, "stage_weights", tuple(float(w) for w in self.stage_weights))
        set_(self, "flip_indices", tuple(int(i) for i in self.flip_indices))
        if not self.heatmap_sizes:
            raise ValueError("HeatmapCodec: heatmap_sizes is empty")
        if len(self.stage_weights) != len(self.heatmap_sizes):
            raise ValueError(f"HeatmapCodec: {len(self.heatmap_sizes)} heatmap sizes but "
                             f"{len(self.stage_weights)} stage weights")
        final_h, final_w = self.heatmap_sizes[-1]
        for h, w in self.heatmap_sizes:
            if final_h % h or final_w % w:
                raise ValueError(f"HeatmapCodec: the last heatmap size must be the largest and every size must "
                                 f"divide it, got {self.heatmap_sizes}")
        if not (isinstance(self.sigma, (int, float)) and math.isfinite(self.sigma) and self.sigma > 0):
            raise ValueError(f"HeatmapCodec: sigma must be a positive number, got {self.sigma!r}")
        if sorted(self.flip_indices) != list(range(len(self.flip_indices))):
            raise ValueError(f"HeatmapCodec: flip_indices must be a permutation of 0..K-1, got {self.flip_indices}")
        if self.target_method not in TARGET_METHODS:
            raise ValueError(f"HeatmapCodec: target_method must be one of {TARGET_METHODS}, "
                             f"got {self.target_method!r}")
        if self.decode_method not in DECODE_METHODS:
            raise ValueError(f"HeatmapCodec: decode_method must be one of {DECODE_METHODS}, "
                             f"got {self.decode_method!r}")
        if isinstance(self.blur_kernel, bool) or not isinstance(self.blur_kernel, int) or self.blur_kernel < 1 \
                or self.blur_kernel % 2 == 0:
            raise ValueError(f"HeatmapCodec: blur_kernel must be a positive odd int, got {self.blur_kernel!r}")

    @property
    def heatmap_size(self) -> tuple[int, int]:
        """(H, W) of the final heatmap."""
        return self.heatmap_sizes[-1]

    @property
    def num_keypoints(self) -> int:
        return len(self.flip_indices)

    # ------------------------------------------------------------------------------ units

    @property
    def udp(self) -> bool:
        """Whether the targets use UDP's pixel grid ((W - 1) / (W_in - 1) between input and heatmap)."""
        return self.target_method == "udp"

    def to_heatmap(self, keypoints: torch.Tensor) -> torch.Tensor:
        """Keypoints (..., 2) (x, y) from input pixels to final-heatmap pixels, float32 (UDP's grid for "udp")."""
        return rescale_keypoints(keypoints, self.input_size, self.heatmap_size, udp=self.udp)

    def to_input(self, keypoints: torch.Tensor) -> torch.Tensor:
        """Keypoints (..., 2) (x, y) from final-heatmap pixels to input pixels, float32 (UDP's grid for "udp")."""
        return rescale_keypoints(keypoints, self.heatmap_size, self.input_size, udp=self.udp)

    def crop_center_scale(self, n: int, map_size: Sequence[int] | None = None, device=None, *, udp: bool = False
                          ) -> tuple[torch.Tensor, torch.Tensor]:
        """center, scale (n, 2) float32 of the crop itself as the box: decoding with them gives input pixels.

        `map_size` (H, W) of the heatmaps being decoded (the final heatmap size by default): crops of
        another size than `input_size` keep the codec's input/heatmap ratio. `udp`: for a decoder that maps
        with UDP's (W - 1) steps ("dark_udp"), so that heatmap pixel W - 1 lands on input pixel W_in - 1.
        """
        (in_h, in_w), (hm_h, hm_w) = self.input_size, self.heatmap_size
        map_h, map_w = self.heatmap_size if map_size is None else (int(v) for v in map_size)
        if udp:
            _udp_sizes(self.input_size, self.heatmap_size, (map_h, map_w))
            width, height = (map_w - 1) * (in_w - 1) / (hm_w - 1), (map_h - 1) * (in_h - 1) / (hm_h - 1)
        else:
            width, height = map_w * in_w / hm_w, map_h * in_h / hm_h
        center = torch.tensor([width / 2, height / 2], dtype=torch.float32, device=device)
        scale = torch.tensor([width / PIXEL_STD, height / PIXEL_STD], dtype=torch.float32, device=device)
        return center.expand(n, 2), scale.expand(n, 2)

    # ----------------------------------------------------------------------------- encode

    def encode(self, keypoints: torch.Tensor, keypoint_weights: torch.Tensor) -> dict:
        """The keyword arguments of `ops.multi_stage_loss` for keypoints (N, K, 2) in input pixels and
        their weights (N, K) (visibility): keypoints in final-heatmap pixels, target_weight, sigma,
        stage_weights, target_method. Use: `multi_stage_loss(outputs, **codec.encode(kpts, weights))`."""
        if keypoints.dim() != 3 or keypoints.shape[-1] != 2:
            raise ValueError(f"HeatmapCodec.encode: keypoints must be (N, K, 2), got shape {tuple(keypoints.shape)}")
        if keypoints.shape[1] != self.num_keypoints:
            raise ValueError(f"HeatmapCodec.encode: keypoints have K = {keypoints.shape[1]}, "
                             f"the codec {self.num_keypoints}")
        return {"keypoints": self.to_heatmap(keypoints), "target_weight": keypoint_weights.float(),
                "sigma": float(self.sigma), "stage_weights": self.stage_weights, "target_method": self.target_method}

    # ----------------------------------------------------------------------------- decode

    def _decode_args(self, n: int, map_size, device, center, scale, method, blur_kernel, flipped) -> dict:
        method = self.decode_method if method is None else method
        if center is None and scale is None:
            center, scale = self.crop_center_scale(n, map_size, device, udp=method == "dark_udp")
        return {"center": center, "scale": scale, "method": method,
                "blur_kernel": self.blur_kernel if blur_kernel is None else blur_kernel,
                "flip_indices": None if flipped is None else self.flip_indices}

    def decode(self, heatmaps: torch.Tensor, flipped: torch.Tensor | None = None, *, center=None, scale=None,
               method: str | None = None, blur_kernel: int | None = None, backend: str = "auto"
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Keypoints (N, K, 2) in image pixels and scores (N, K) from final heatmaps (N, K, H, W).

        flipped: the mirrored crops' heatmaps (flip test, merged with the codec's flip indices).
        center, scale: (N, 2) each, the crops' boxes; without them keypoints are in input pixels.
        method, blur_kernel: None = the codec's. backend: `ops.decode_heatmaps`'s.
        """
        from ..ops.decode import decode_heatmaps  # the ops layer builds on codecs: imported when used

        args = self._decode_args(heatmaps.shape[0], heatmaps.shape[-2:], heatmaps.device, center, scale, method,
                                 blur_kernel, flipped)
        return decode_heatmaps(heatmaps, flipped=flipped, backend=backend, **args)

    def decode_embeddings(self, embedding: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                          upscale: int, flipped: torch.Tensor | None = None, *, center=None, scale=None,
                          method: str | None = None, blur_kernel: int | None = None, backend: str = "auto"
                          ) -> tuple[torch.Tensor, torch.Tensor]:
        """As `decode`, from the final SR head's input (N, K * e, h, w) and its converge step (grouped conv
        `weight`, `bias`, pixel shuffle `upscale`) without writing the heatmaps (`ops.sr_head_decode`)."""
        from ..ops.sr_head_decode import sr_head_decode

        map_size = (embedding.shape[-2] * upscale, embedding.shape[-1] * upscale)
        args = self._decode_args(embedding.shape[0], map_size, embedding.device, center, scale, method,
                                 blur_kernel, flipped)
        return sr_head_decode(embedding, weight, bias, upscale, flipped_emb=flipped, backend=backend, **args)
