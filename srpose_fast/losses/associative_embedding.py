"""The bottom-up loss of Associative Embedding with the original's semantics (SPEC.md section 6).

- Heatmap loss, per image: mean over (K, H, W) of (pred - target)^2 * mask; times its factor (1).
- Tag loss, per image, on the tag channels flattened to one vector and read at the joint indices
  (`codecs.bottomup_targets.joint_indices`): every person with at least one indexed joint has tags
  t_j and reference r = mean_j t_j;
    pull = sum_p mean_j (t_j - r_p)^2 / P,
    push = 0.5 * sum_{a != b} f(r_a - r_b) / (P (P - 1)),  f = exp(-d^2) ("exp") or max(0, 1 - |d|) ("max");
  push is 0 when P < 2, both are 0 when P = 0. Each times its factor (1e-3).
- Each term is averaged over the batch; the total is their sum.

Plain torch, vectorised over people (the original loops over people and joints in Python); the
fused ops in `srpose_fast.ops.bottomup_loss` are tested against these functions.
"""
from __future__ import annotations

import torch

AE_LOSS_TYPES = ("exp", "max")
HEATMAP_FACTOR = 1.0
PUSH_FACTOR = 1e-3
PULL_FACTOR = 1e-3


def _compute_dtype(tensor: torch.Tensor) -> torch.dtype:
    """float32 for half and single precision inputs (autocast outputs), float64 for float64."""
    return torch.promote_types(tensor.dtype, torch.float32)


def masked_heatmap_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-image loss (N,) (float32, float64 for float64 pred): mean over (K, H, W) of (pred - target)^2 * mask, mask (N, H, W)."""
    if pred.shape != target.shape or pred.dim() != 4:
        raise ValueError(f"heatmap loss: pred and target must be one (N, K, H, W) shape, got "
                         f"{tuple(pred.shape)} and {tuple(target.shape)}")
    if tuple(mask.shape) != (pred.shape[0], *pred.shape[2:]):
        raise ValueError(f"heatmap loss: mask must be (N, H, W) = {(pred.shape[0], *pred.shape[2:])}, "
                         f"got {tuple(mask.shape)}")
    dtype = _compute_dtype(pred)
    diff = pred.to(dtype) - target.to(dtype)
    return (diff * diff * mask.to(dtype)[:, None]).mean(dim=(1, 2, 3))


def gather_tags(tags: torch.Tensor, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(values (N, M, K) (float32 or float64), indexed (N, M, K) bool): the tags at the joint indices (N, M, K, 2)."""
    n = tags.shape[0]
    if indices.dim() != 4 or indices.shape[0] != n or indices.shape[-1] != 2:
        raise ValueError(f"tag loss: joint indices must be (N={n}, M, K, 2), got {tuple(indices.shape)}")
    flat = tags.reshape(n, -1)
    index = indices[..., 0].long()
    indexed = indices[..., 1] > 0
    # An index past the tag values fails in gather (no data-dependent check here: torch.compile traces this).
    index = torch.where(indexed, index, torch.zeros_like(index))
    values = flat.gather(1, index.reshape(n, -1)).reshape(index.shape).to(_compute_dtype(flat))
    return values, indexed


def push_pull_from_values(values: torch.Tensor, indexed: torch.Tensor,
                          loss_type: str = "exp") -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image (push (N,), pull (N,)) without factors, from tag values (N, M, K) and their flags."""
    if loss_type not in AE_LOSS_TYPES:
        raise ValueError(f"tag loss: loss_type must be one of {AE_LOSS_TYPES}, got {loss_type!r}")
    weight = indexed.float()
    count = weight.sum(-1)  # joints per person (N, M)
    present = count > 0
    people = present.sum(-1).float()  # P (N,)
    ref = (values * weight).sum(-1) / count.clamp(min=1)
    spread = values - ref[..., None]
    pull_person = (spread * spread * weight).sum(-1) / count.clamp(min=1)
    pull = pull_person.sum(-1) / people.clamp(min=1)
    diff = ref[:, :, None] - ref[:, None, :]
    term = torch.exp(-diff * diff) if loss_type == "exp" else (1 - diff.abs()).clamp(min=0)
    eye = torch.eye(ref.shape[1], dtype=torch.bool, device=ref.device)
    pairs = present[:, :, None] & present[:, None, :] & ~eye
    push = 0.5 * torch.where(pairs, term, torch.zeros_like(term)).sum((1, 2)) / (people * (people - 1)).clamp(min=1)
    return push, pull


def tag_loss(tags: torch.Tensor, indices: torch.Tensor, loss_type: str = "exp") -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image (push (N,), pull (N,)) without factors; tags (N, K, H, W), indices (N, M, K, 2)."""
    values, indexed = gather_tags(tags, indices)
    return push_pull_from_values(values, indexed, loss_type)


def combine_terms(heatmap: torch.Tensor, push: torch.Tensor, pull: torch.Tensor, *,
                  heatmap_factor: float = HEATMAP_FACTOR, push_factor: float = PUSH_FACTOR,
                  pull_factor: float = PULL_FACTOR) -> dict[str, torch.Tensor]:
    """The loss terms from the per-image terms (N,): batch means times their factors, and their sum `loss`."""
    losses = {"heatmap_loss": heatmap.mean() * heatmap_factor, "push_loss": push.mean() * push_factor,
              "pull_loss": pull.mean() * pull_factor}
    losses["loss"] = losses["heatmap_loss"] + losses["push_loss"] + losses["pull_loss"]
    return losses


def associative_embedding_loss(output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                               indices: torch.Tensor, *, loss_type: str = "exp", **factors) -> dict[str, torch.Tensor]:
    """The original's loss of one output (N, 2K, H, W) = K heatmaps then K tags, batch-averaged terms.

    Returns `heatmap_loss`, `push_loss`, `pull_loss` and their sum `loss` (float32 scalars); `factors` are
    `combine_terms`' (heatmap_factor, push_factor, pull_factor).
    """
    num_joints = target.shape[1]
    if output.dim() != 4 or output.shape[1] != 2 * num_joints:
        raise ValueError(f"bottom-up loss: output must be (N, 2K = {2 * num_joints}, H, W), got {tuple(output.shape)}")
    heatmap = masked_heatmap_loss(output[:, :num_joints], target, mask)
    push, pull = tag_loss(output[:, num_joints:], indices, loss_type)
    return combine_terms(heatmap, push, pull, **factors)
