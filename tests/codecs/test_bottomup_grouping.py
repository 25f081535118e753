"""Grouping by tags (codecs.grouping) on constructed candidates, against costs worked by hand.

Candidates are given per joint type as (x, y, val, tag) with 1-D tags (L = 1) unless said otherwise;
the cost of candidate c and person p is round(|tag_c - mean_p|) * 100 - val_c.
"""
import numpy as np
import pytest

from srpose_fast.codecs.associative_embedding import COCO_JOINT_ORDER, AssociativeEmbedding
from srpose_fast.codecs.grouping import match_by_tag

K, M = 17, 4


def candidates(per_joint: dict[int, list[tuple]], tag_dim: int = 1):
    """top-k arrays (K, M, L), (K, M, 2), (K, M) from {joint: [(x, y, val, tag or tags), ...]}; the rest 0."""
    tag_k = np.zeros((K, M, tag_dim), np.float32)
    loc_k = np.zeros((K, M, 2), np.int64)
    val_k = np.zeros((K, M), np.float32)
    for joint, rows in per_joint.items():
        for m, (x, y, val, tag) in enumerate(rows):
            loc_k[joint, m] = (x, y)
            val_k[joint, m] = val
            tag_k[joint, m] = tag
    return tag_k, loc_k, val_k


def group(per_joint, *, max_people=30, tag_dim=1, order=COCO_JOINT_ORDER):
    return match_by_tag(*candidates(per_joint, tag_dim), joint_order=order, detection_threshold=0.1,
                        tag_threshold=1.0, max_people=max_people)


def test_seed_match_new_person_and_rejection():
    # joint 0 seeds two people (tags 0 and 5); joint 1 (left eye):
    #   c0 tag 0.3 val 0.7: |0.3-0| = 0.3 -> 0 -> -0.7;   |0.3-5| = 4.7 -> 5 -> 499.3
    #   c1 tag 4.4 val 0.6: |4.4-0| = 4.4 -> 4 -> 399.4;  |4.4-5| = 0.6 -> 1 -> 99.4
    #   c2 tag 20  val 0.5: 20 -> 1999.5;                 15 -> 1499.5;   padding column 1e10
    #   minimum: c0 -> p0 (-0.7), c1 -> p1 (99.4), c2 -> padding: c0, c1 join (0.3, 0.6 < 1), c2 is a new person.
    # joint 2 (right eye), one candidate tag 1.2 val 0.5; means p0 (0 + 0.3) / 2 = 0.15, p1 (5 + 4.4) / 2 = 4.7,
    #   p2 20: |1.2-0.15| = 1.05 -> 1 -> 99.5; |1.2-4.7| = 3.5 -> 4 (half to even) -> 399.5; 18.8 -> 1899.5:
    #   assigned to p0 but 1.05 >= 1: a new person.
    people = group({0: [(10, 11, 0.9, 0.0), (30, 31, 0.8, 5.0)],
                    1: [(12, 13, 0.7, 0.3), (32, 33, 0.6, 4.4), (50, 51, 0.5, 20.0)],
                    2: [(14, 15, 0.5, 1.2)]})
    assert people.shape == (4, K, 4) and people.dtype == np.float32
    np.testing.assert_array_equal(people[0, :3], np.float32([[10, 11, 0.9, 0.0], [12, 13, 0.7, 0.3], [0, 0, 0, 0]]))
    np.testing.assert_array_equal(people[1, :3], np.float32([[30, 31, 0.8, 5.0], [32, 33, 0.6, 4.4], [0, 0, 0, 0]]))
    np.testing.assert_array_equal(people[2, :3], np.float32([[0, 0, 0, 0], [50, 51, 0.5, 20.0], [0, 0, 0, 0]]))
    np.testing.assert_array_equal(people[3, :3], np.float32([[0, 0, 0, 0], [0, 0, 0, 0], [14, 15, 0.5, 1.2]]))
    assert not people[:, 3:].any()


def test_joint_order_and_first_type_with_candidates_seeds():
    # COCO order visits 11 (left hip) before 7 (left elbow): with no head or shoulder candidates, the hip seeds.
    # Elbow tag 2.4 vs the hip's 2.0: distance 0.4 -> cost -0.6, joined.
    people = group({7: [(5, 6, 0.6, 2.4)], 11: [(1, 2, 0.3, 2.0)]})
    assert people.shape == (1, K, 4)
    np.testing.assert_array_equal(people[0, 11], np.float32([1, 2, 0.3, 2.0]))
    np.testing.assert_array_equal(people[0, 7], np.float32([5, 6, 0.6, 2.4]))
    # in index order the elbow (7) comes first and seeds
    people = group({7: [(5, 6, 0.6, 2.4)], 11: [(1, 2, 0.3, 2.0)]}, order=tuple(range(K)))
    np.testing.assert_array_equal(people[0, 7], np.float32([5, 6, 0.6, 2.4]))
    np.testing.assert_array_equal(people[0, 11], np.float32([1, 2, 0.3, 2.0]))


def test_detection_threshold_compares_in_float64():
    # float32(0.1) = 0.100000001490116... > 0.1 (float64): kept. nextafter below it (0.09999999) is dropped.
    below = np.nextafter(np.float32(0.1), np.float32(0))
    people = group({0: [(1, 1, np.float32(0.1), 0.0), (2, 2, below, 3.0)]})
    assert people.shape == (1, K, 4)
    assert people[0, 0, 2] == np.float32(0.1)


def test_people_with_equal_keys_share_one_entry():
    # Two seeds with the same first tag component (the original's dict key): the second overwrites the first.
    people = group({0: [(1, 1, 0.9, 2.0), (8, 8, 0.8, 2.0)]})
    assert people.shape == (1, K, 4)
    np.testing.assert_array_equal(people[0, 0], np.float32([8, 8, 0.8, 2.0]))


def test_only_the_first_max_people_are_matched():
    # Seeds tags 0 and 5; with max_people 1 only person 0 (mean 0) is matched: the eye with tag 5.1
    # costs round(5.1) * 100 - 0.5 = 499.5 < 1e10 (one candidate, one person: no padding), assigned to person 0,
    # rejected (5.1 >= 1) -> a new person keyed 5.1. With max_people 30 it joins person 1 (distance 0.1).
    per_joint = {0: [(1, 1, 0.9, 0.0), (2, 2, 0.8, 5.0)], 1: [(3, 3, 0.5, 5.1)]}
    assert group(per_joint, max_people=1).shape[0] == 3
    people = group(per_joint)
    assert people.shape[0] == 2
    np.testing.assert_array_equal(people[1, 1], np.float32([3, 3, 0.5, 5.1]))


def test_two_dimensional_tags_use_the_euclidean_norm():
    # Flip test tags (t, t_flip): person (0, 0); candidate (0.6, 0.6): norm 0.8485 -> 1 -> cost 99.5, < 1: joins,
    # the mean becomes (0.3, 0.3). Candidate (1.2, 1.2): norm of (0.9, 0.9) = 1.2728 >= 1: a new person, although
    # each component is < 1 from the mean.
    people = group({0: [(1, 1, 0.9, (0.0, 0.0))], 1: [(2, 2, 0.5, (0.6, 0.6))], 2: [(3, 3, 0.5, (1.2, 1.2))]},
                   tag_dim=2)
    assert people.shape == (2, K, 5)
    np.testing.assert_array_equal(people[0, 1], np.float32([2, 2, 0.5, 0.6, 0.6]))
    np.testing.assert_array_equal(people[1, 2], np.float32([3, 3, 0.5, 1.2, 1.2]))


def test_no_candidates_gives_no_people():
    assert group({0: [(1, 1, 0.05, 0.0)]}).shape == (0, K, 4)


def test_codec_joint_order_and_checks():
    assert AssociativeEmbedding().joint_order == COCO_JOINT_ORDER
    assert AssociativeEmbedding(flip_indices=(1, 0, 2)).joint_order == (0, 1, 2)
    with pytest.raises(ValueError, match="nms_kernel must be 2"):
        AssociativeEmbedding(nms_kernel=11, nms_padding=4)
    with pytest.raises(ValueError, match="permutation"):
        AssociativeEmbedding(flip_indices=(0, 0))
