"""Grouping joints into people by their tags (Associative Embedding), on the host: numpy and scipy.

The original's `_match_by_tag` (mmpose 0.x, from pose-ae-train), step by step, for one image:

- Joint types are visited in `joint_order`. A candidate of type j is (x, y, val, tag) from the top-k; it
  takes part when val > detection_threshold (compared in float64, as the original's concatenated array is).
- The first type with candidates seeds one person per candidate. A person is keyed by the first component
  of the tag that created it: a later person whose key is equal lands on the same entry, overwriting that
  joint and restarting its tag list (the original's dict; kept, since it decides who is who).
- Every later type is matched against the first `max_people` people (in creation order) by their mean tags:
  cost = round(||tag - mean||_2) * 100 - val (rounding half to even), padded with 1e10 columns to a square
  when there are more candidates than people. The assignment minimises the total cost. A candidate joins its
  assigned person when the raw distance is < tag_threshold; otherwise (or when assigned a padding column) it
  starts a new person, in candidate order.
- A person is a (K, 3 + L) float32 array (x, y, val, tag...) with zeros for the joints it does not have.

The assignment: scipy.optimize.linear_sum_assignment in place of the original's munkres (pure Python,
O(n^3)). Both find a minimum-cost assignment; where several assignments share the minimum they may pick
different ones. Costs tie when a candidate's rounded distances to two people are equal and it is the only
candidate that could take either (e.g. it lies within 0.5 of both people's mean tags). Checked against
munkres 1.1.4 on random matrices (BU-DECODE notes): the same matched pairs on every matrix without ties,
different pairs on about 16% of tie-heavy ones. This can change which person a joint joins, so it is the one
place where the grouping may differ from the original's.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

# Cost of matching a candidate to a padding column (no person): more than any real cost.
PADDING_COST = 1e10
# Rounded tag distances are weighted this much above the detection value in the cost.
DISTANCE_WEIGHT = 100


def match_by_tag(tag_k: np.ndarray, loc_k: np.ndarray, val_k: np.ndarray, *, joint_order: Sequence[int],
                 detection_threshold: float, tag_threshold: float, max_people: int) -> np.ndarray:
    """People (P, K, 3 + L) float32 of one image from its top-k candidates.

    Args:
        tag_k: (K, M, L) float32 tags of the candidates; loc_k: (K, M, 2) integer (x, y); val_k: (K, M)
            float32 heatmap values (descending per joint).
    """
    tag_k = np.asarray(tag_k, dtype=np.float32)
    val_k = np.asarray(val_k, dtype=np.float32)
    num_joints, _, tag_dim = tag_k.shape
    people: dict[float, np.ndarray] = {}  # key -> (K, 3 + L) joints, in creation order
    person_tags: dict[float, list[np.ndarray]] = {}

    def start_person(key: float, joint_type: int, joint: np.ndarray, tag: np.ndarray) -> None:
        people.setdefault(key, np.zeros((num_joints, 3 + tag_dim), dtype=np.float32))[joint_type] = joint
        person_tags[key] = [tag]

    for joint_type in joint_order:
        tags = tag_k[joint_type]
        # float64, as the original's concatenation of int64 locations with float32 values and tags
        joints = np.concatenate((np.asarray(loc_k[joint_type], dtype=np.float64),
                                 val_k[joint_type, :, None].astype(np.float64), tags.astype(np.float64)), axis=1)
        keep = joints[:, 2] > detection_threshold
        tags, joints = tags[keep], joints[keep]
        if len(joints) == 0:
            continue
        if not people:
            for tag, joint in zip(tags, joints):
                start_person(float(tag[0]), joint_type, joint, tag)
            continue
        keys = list(people)[:max_people]
        means = np.array([np.mean(person_tags[key], axis=0) for key in keys])  # float32, as np.mean keeps it
        distance = np.linalg.norm(joints[:, None, 3:] - means[None, :, :], ord=2, axis=2)
        cost = np.round(distance) * DISTANCE_WEIGHT - joints[:, 2:3]
        added, grouped = cost.shape
        if added > grouped:
            cost = np.concatenate((cost, np.full((added, added - grouped), PADDING_COST)), axis=1)
        rows, cols = linear_sum_assignment(cost)
        for row, col in zip(rows, cols):
            if col < grouped and distance[row, col] < tag_threshold:
                key = keys[col]
                people[key][joint_type] = joints[row]
                person_tags[key].append(tags[row])
            else:
                start_person(float(tags[row][0]), joint_type, joints[row], tags[row])
    if not people:
        return np.zeros((0, num_joints, 3 + tag_dim), dtype=np.float32)
    return np.stack(list(people.values())).astype(np.float32)
