"""Top-down augmentation and affine crop, with mmpose 0.x TopDown pipeline semantics (SPEC.md section 2).

Training: random horizontal flip (p 0.5) -> half-body (p 0.3, more than 8 visible joints) ->
random scale (clip(N(0,1) * 0.5 + 1, 0.5, 1.5)) and rotation (clip(N(0,1) * 40, -80, 80), p 0.6) ->
affine crop to the input size -> ImageNet normalisation. Evaluation: affine crop and normalisation.

Conventions used throughout `srpose_fast.data`:
- Sizes are (H, W), as `input_size=(256, 192)`. (mmpose passes (W, H); only the order differs.)
- `center` is (x, y) in image pixels; `scale` is (w, h) of the crop box in units of 200 px.
- Keypoints are (K, 2) pixel coordinates (x, y); `visible` is (K,) with 1 for a labelled keypoint
  (COCO v = 1 or 2) and 0 otherwise. Keypoints that are not labelled stay at (0, 0), as in mmpose.
- All randomness comes from the `numpy.random.Generator` passed in.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ..codecs.transforms import PIXEL_STD
from ..codecs.transforms import box_to_center_scale as boxes_to_center_scale
from ..keypoint_sets import KeypointSet

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Names of the joints mmpose counts as lower body in its half-body transform; every other
# joint is upper body. This reproduces mmpose's upper_body_ids for COCO (0-10), MPII (7-15)
# and CrowdPose (0-5, 12, 13).
_LOWER_BODY_WORDS = ("hip", "knee", "ankle", "pelvis")
# mmpose 0.x `_xywh2cs`: a moved centre shifts by BOX_SHIFT_FACTOR * (U(0, 1) - 0.5) of the box, up to +-20%.
BOX_SHIFT_FACTOR = 0.4


@dataclass(frozen=True)
class AugmentParams:
    """SRPose's training augmentation (SPEC.md section 2); the defaults are the paper's."""

    flip_prob: float = 0.5
    half_body_prob: float = 0.3
    half_body_min_joints: int = 8  # half-body needs MORE than this many visible joints
    half_body_padding: float = 1.5
    scale_factor: float = 0.5
    rot_factor: float = 40.0
    rot_prob: float = 0.6
    box_shift_prob: float = 0.3  # share of training boxes whose centre moves (shift_box_center)


@dataclass
class Sample:
    """One transformed person crop. `image` is (3, H, W) float32, normalised RGB."""

    image: np.ndarray
    keypoints: np.ndarray  # (K, 2) float32, input-image pixels after the affine crop
    visible: np.ndarray  # (K,) float32, 1 = labelled (mmpose's joints_3d_visible after flip)
    center: np.ndarray  # (2,) float32, after flip / half-body
    scale: np.ndarray  # (2,) float32, after half-body / random scale
    rotation: float
    flipped: bool

    @property
    def target_weight(self) -> np.ndarray:
        """The loss weight the data set hands over: the visibility, also for a labelled joint outside the
        crop. The loss sets it to 0 only when the joint's whole Gaussian window lies outside the heatmap
        (SPEC.md section 2), so the crop must not decide it."""
        return self.visible


def upper_body_ids(keypoint_set: KeypointSet) -> tuple[int, ...]:
    """Indices of the joints mmpose's half-body transform treats as upper body."""
    return tuple(i for i, name in enumerate(keypoint_set.names)
                 if not any(word in name for word in _LOWER_BODY_WORDS))


def box_to_center_scale(x: float, y: float, w: float, h: float, input_size: tuple[int, int],
                        padding: float = 1.25) -> tuple[np.ndarray, np.ndarray]:
    """mmpose's `_xywh2cs` for one box, as numpy: `codecs.transforms.box_to_center_scale`. `input_size` is (H, W)."""
    center, scale = boxes_to_center_scale(torch.tensor([[x, y, w, h]], dtype=torch.float64),
                                          input_size[1] / input_size[0], padding)
    return center[0].numpy(), scale[0].numpy()


def shift_box_center(center, w: float, h: float, rng: np.random.RandomState, prob: float) -> np.ndarray:
    """SRPose's training box jitter (mmpose 0.x `_xywh2cs` outside test mode): with probability `prob` the
    centre moves by BOX_SHIFT_FACTOR * (U(0, 1) - 0.5) * (w, h). Draws `rng.rand()` for every box, then
    `rng.rand(2)` when it moves, as mmpose's np.random calls do; float32 centre, float64 shift."""
    center = np.array(center, dtype=np.float32)
    if rng.rand() < prob:
        center += BOX_SHIFT_FACTOR * (rng.rand(2) - 0.5) * np.array([w, h])
    return center


def get_affine_transform(center, scale, rot: float, output_size: tuple[int, int],
                         inv: bool = False) -> np.ndarray:
    """The 2x3 affine of mmpose's `get_affine_transform` (shift 0), in float64.

    Maps the box of width `scale[0] * 200` centred at `center`, rotated by `rot` degrees, onto an
    output of `output_size` = (H, W): the centre goes to (W / 2, H / 2), the box width to W. Like
    mmpose only `scale[0]` is used (the box is assumed to have the output's aspect ratio); positive
    `rot` turns the image content counter-clockwise. mmpose builds the same map from three point
    pairs with cv2.getAffineTransform in float32; this is its closed form (a rotation and a uniform
    scale), equal to it up to float32 rounding. `inv=True` gives the map from output to image.
    """
    out_h, out_w = output_size
    src_w = float(scale[0]) * PIXEL_STD
    s = out_w / src_w
    r = np.deg2rad(rot)
    cs, sn = np.cos(r), np.sin(r)
    cx, cy = float(center[0]), float(center[1])
    dcx, dcy = out_w * 0.5, out_h * 0.5
    if not inv:
        a = s * np.array([[cs, sn], [-sn, cs]])
        t = np.array([dcx, dcy]) - a @ np.array([cx, cy])
    else:
        a = (1.0 / s) * np.array([[cs, -sn], [sn, cs]])
        t = np.array([cx, cy]) - a @ np.array([dcx, dcy])
    return np.concatenate([a, t[:, None]], axis=1)


def affine_points(points: np.ndarray, trans: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine to (..., 2) points."""
    points = np.asarray(points, dtype=np.float64)
    return points @ trans[:, :2].T + trans[:, 2]


def flip_keypoints(keypoints: np.ndarray, visible: np.ndarray, image_width: int,
                   flip_indices) -> tuple[np.ndarray, np.ndarray]:
    """mmpose's `fliplr_joints`: x -> W - 1 - x, left/right swapped, unlabelled joints back to (0, 0)."""
    flipped = keypoints.copy()
    flipped[:, 0] = image_width - 1 - flipped[:, 0]
    idx = np.asarray(flip_indices)
    flipped = flipped[idx]
    vis = visible[idx].copy()
    flipped *= vis[:, None] > 0
    return flipped, vis


def half_body_center_scale(keypoints: np.ndarray, visible: np.ndarray, upper_ids, input_size,
                           rng: np.random.Generator, padding: float = 1.5):
    """mmpose's `half_body_transform`: centre and scale of the upper or the lower body's visible
    joints, or (None, None) when fewer than two are chosen.

    Upper is chosen when `rng.standard_normal() < 0.5` and it has more than two joints (mmpose's
    test is randn, not rand, so upper is picked about 69% of the time), else lower when it has more
    than two, else upper.
    """
    upper_set = set(upper_ids)
    upper = [keypoints[i] for i in range(len(keypoints)) if visible[i] > 0 and i in upper_set]
    lower = [keypoints[i] for i in range(len(keypoints)) if visible[i] > 0 and i not in upper_set]
    if rng.standard_normal() < 0.5 and len(upper) > 2:
        selected = upper
    elif len(lower) > 2:
        selected = lower
    else:
        selected = upper
    if len(selected) < 2:
        return None, None
    selected = np.asarray(selected, dtype=np.float32)
    center = selected.mean(axis=0)
    w, h = selected.max(axis=0) - selected.min(axis=0)
    _, scale = box_to_center_scale(0.0, 0.0, float(w), float(h), input_size, padding)
    return center.astype(np.float32), scale


def normalize_image(image_rgb: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) RGB -> float32 (3, H, W), (x / 255 - mean) / std with ImageNet statistics."""
    mean = np.asarray(IMAGENET_MEAN, dtype=np.float32) * 255.0
    inv_std = 1.0 / (np.asarray(IMAGENET_STD, dtype=np.float32) * 255.0)
    out = (image_rgb.astype(np.float32) - mean) * inv_std
    return np.ascontiguousarray(out.transpose(2, 0, 1))


def crop(image_bgr: np.ndarray, keypoints: np.ndarray, visible: np.ndarray, center, scale,
         rot: float, input_size: tuple[int, int], *, flipped: bool = False) -> Sample:
    """Affine crop (cv2.warpAffine, INTER_LINEAR, black border) of a BGR image and its keypoints,
    then RGB conversion and normalisation. Unlabelled keypoints stay at (0, 0)."""
    trans = get_affine_transform(center, scale, rot, input_size)
    out_h, out_w = input_size
    patch = cv2.warpAffine(image_bgr, trans, (int(out_w), int(out_h)), flags=cv2.INTER_LINEAR)
    patch = cv2.cvtColor(patch, cv2.COLOR_BGR2RGB)
    vis = (np.asarray(visible) > 0)
    kpts = np.where(vis[:, None], affine_points(keypoints, trans), 0.0).astype(np.float32)
    return Sample(
        image=normalize_image(patch),
        keypoints=kpts,
        visible=vis.astype(np.float32),
        center=np.asarray(center, dtype=np.float32),
        scale=np.asarray(scale, dtype=np.float32),
        rotation=float(rot),
        flipped=flipped,
    )


def train_transform(image_bgr: np.ndarray, keypoints: np.ndarray, visible: np.ndarray, center, scale,
                    *, rng: np.random.Generator, keypoint_set: KeypointSet, input_size: tuple[int, int],
                    params: AugmentParams = AugmentParams()) -> Sample:
    """SRPose's training pipeline on one person: flip, half-body, scale/rotation, affine crop.

    Random draws, in order: flip (rng.random), half-body (rng.random, then a standard normal
    inside the transform; only when enough joints are visible), scale (standard normal),
    rotation (standard normal, then rng.random for its probability).
    """
    keypoints = np.asarray(keypoints, dtype=np.float32)
    visible = (np.asarray(visible) > 0).astype(np.float32)
    center = np.array(center, dtype=np.float32)
    scale = np.array(scale, dtype=np.float32)

    flipped = bool(rng.random() < params.flip_prob)
    if flipped:
        image_bgr = cv2.flip(image_bgr, 1)
        width = image_bgr.shape[1]
        keypoints, visible = flip_keypoints(keypoints, visible, width, keypoint_set.flip_indices)
        center[0] = width - center[0] - 1

    if visible.sum() > params.half_body_min_joints and rng.random() < params.half_body_prob:
        c, s = half_body_center_scale(keypoints, visible, upper_body_ids(keypoint_set), input_size,
                                      rng, params.half_body_padding)
        if c is not None:
            center, scale = c, s

    sf, rf = params.scale_factor, params.rot_factor
    scale = scale * np.float32(np.clip(rng.standard_normal() * sf + 1, 1 - sf, 1 + sf))
    r = float(np.clip(rng.standard_normal() * rf, -2 * rf, 2 * rf))
    rot = r if rng.random() <= params.rot_prob else 0.0

    return crop(image_bgr, keypoints, visible, center, scale, rot, input_size, flipped=flipped)


def eval_transform(image_bgr: np.ndarray, keypoints: np.ndarray, visible: np.ndarray, center, scale,
                   *, input_size: tuple[int, int]) -> Sample:
    """The evaluation pipeline: affine crop (no rotation) and normalisation."""
    return crop(image_bgr, np.asarray(keypoints, dtype=np.float32), visible, center, scale, 0.0,
                input_size)
