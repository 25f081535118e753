"""What every top-down heatmap head does besides its forward: its codec, its backend, the loss, predict.

A head's `forward(feats)` returns the list of train-mode heatmaps in training and the final heatmaps in
eval mode. `loss(outputs, batch)` and `predict(feats, flipped_feats)` go through the head's codec
(`self.codec`, a `HeatmapCodec`, set by `build_model`), and every fused op the head runs uses
`self.backend`, read at call time (`set_backend`).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn as nn

from ...codecs.heatmap_codec import HeatmapCodec
from ...ops.backend import BACKENDS
from ...ops.multi_stage_loss import multi_stage_loss


def plain_and_flipped(run, feats: Sequence[torch.Tensor], flipped_feats: Sequence[torch.Tensor] | None):
    """`run` on the plain crops' features and on the mirrored crops', as ONE batch (in eval mode the samples
    are independent): half the launches of two calls. Returns (plain output, flipped output or None)."""
    if flipped_feats is None:
        return run(feats), None
    n = feats[0].shape[0]
    both = run([torch.cat(pair) for pair in zip(feats, flipped_feats)])
    return both[:n], both[n:]


class HeatmapHead(nn.Module):
    """Base of the top-down heatmap heads; `predict` decodes the eval-mode heatmaps."""

    def __init__(self, codec: HeatmapCodec | None = None):
        super().__init__()
        self.codec = codec
        self.backend = "auto"

    def set_backend(self, backend: str) -> None:
        """The backend of the head's fused ops (SR head, loss, decode): "auto" | "torch" | "triton" | "cuda" |
        "cpp" (decode only); "auto" picks per op and device (`ops.backend.resolve_backend`)."""
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.backend = backend

    def _codec(self) -> HeatmapCodec:
        if self.codec is None:
            raise ValueError(f"{type(self).__name__} has no codec: build the model with build_model, or set "
                             "head.codec = HeatmapCodec(...)")
        return self.codec

    def loss(self, outputs, batch: Mapping[str, torch.Tensor], *, backend: str | None = None) -> torch.Tensor:
        """The training loss of the train-mode `outputs`; `batch` holds "keypoints" (N, K, 2) in input
        pixels and "target_weight" (N, K), on the outputs' device or any other."""
        outputs = [outputs] if isinstance(outputs, torch.Tensor) else outputs
        targets = self._codec().encode(batch["keypoints"], batch["target_weight"])
        return multi_stage_loss(outputs, **targets, backend=self.backend if backend is None else backend)

    def predict(self, feats: Sequence[torch.Tensor], flipped_feats: Sequence[torch.Tensor] | None = None, *,
                method: str | None = None, blur_kernel: int | None = None, center=None, scale=None,
                backend: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Keypoints (N, K, 2) and scores (N, K) of the crops whose backbone features are `feats` (with the
        mirrored crops' `flipped_feats` for the flip test); call in eval mode. center/scale (N, 2): the crops'
        boxes (keypoints in input pixels without them). method, blur_kernel: None = the codec's."""
        heatmaps, flipped = plain_and_flipped(self, feats, flipped_feats)
        return self._codec().decode(heatmaps, flipped, center=center, scale=scale, method=method,
                                    blur_kernel=blur_kernel, backend=self.backend if backend is None else backend)


class SRDecodeHead(HeatmapHead):
    """A head whose last step is an SR head (`Converge`): `predict` decodes from that step's input without
    writing the full-resolution heatmaps. Subclasses define `final_embedding(feats)` (the last SR head's
    input, (N, K * e, h, w)) and `final_converge` (that SR head's `Converge`)."""

    def predict(self, feats: Sequence[torch.Tensor], flipped_feats: Sequence[torch.Tensor] | None = None, *,
                method: str | None = None, blur_kernel: int | None = None, center=None, scale=None,
                backend: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        embedding, flipped = plain_and_flipped(self.final_embedding, feats, flipped_feats)
        return self.final_converge.decode(embedding, flipped, self._codec(), center=center, scale=scale,
                                          method=method, blur_kernel=blur_kernel,
                                          backend=self.backend if backend is None else backend)
