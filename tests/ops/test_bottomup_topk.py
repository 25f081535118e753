"""ops.bottomup_topk: the Triton kernel (under the interpreter on the CPU) against the torch reference
(codecs.bottomup_maps), bit for bit, with poisoned outputs; small blocks split the maps over programs."""
import pytest
import torch

from srpose_fast.benchmarking.bottomup_outputs import synthetic_bottomup_outputs
from srpose_fast.codecs.bottomup_maps import bottomup_topk_reference
from srpose_fast.keypoint_sets import COCO
from srpose_fast.ops.bottomup_topk import bottomup_topk

pytest.importorskip("triton")

FLIP3 = (1, 0, 2)


def _kernel(outputs, flipped, pad, k, block):
    from srpose_fast.kernels.bottomup_topk import bottomup_topk_forward

    index = torch.tensor(FLIP3[:outputs.shape[1] // 2])
    return bottomup_topk_forward(outputs, flipped, index, True, pad, k, *block)


def _assert_same(got, want):
    for name, a, b in zip(("heatmaps", "values", "locations", "tags"), got, want):
        assert a.dtype == b.dtype and a.shape == b.shape, name
        assert torch.equal(a, b), name


@pytest.mark.parametrize("shape,pad,k,block,flip", [
    ((1, 6, 11, 13), 2, 5, (8, 8), True),  # 3 x 4 tiles of 4x4 pixels per map, 3 joints; odd sizes
    ((2, 4, 9, 11), 1, 30, (16, 16), True),  # one tile per map, k = 30, batch 2
    ((1, 6, 13, 17), 5, 7, (16, 16), False),  # padding 5 (HRNet-W32's NMS), no flip
])
def test_kernel_matches_reference(poison_kernel_outputs, shape, pad, k, block, flip):
    generator = torch.Generator().manual_seed(sum(shape))
    outputs = torch.rand(shape, generator=generator)
    flipped = torch.rand(shape, generator=generator) if flip else None
    joints = shape[1] // 2
    want = bottomup_topk_reference(outputs, flipped, FLIP3[:joints], shape[2:], 2 * pad + 1, pad, k)
    _assert_same(_kernel(outputs, flipped, pad, k, block), want)


def test_ties_plateaus_zeros_and_negative_maxima(poison_kernel_outputs):
    # A plateau of four equal maxima across two tiles, maps of many exact zeros, a negative maximum (kept by
    # NMS; below the zeros), -0.0 values: the order is value, then lowest flat index, as the reference's.
    outputs = torch.zeros(1, 2, 10, 12)
    outputs[0, 0, 4:6, 5:7] = 0.5
    outputs[0, 0, 0, 0] = -0.25
    outputs[0, 0, 9, 11] = -0.0
    outputs[0, 1] = torch.arange(120.0).reshape(10, 12)
    # 4x8 blocks: tiles of 2x6 = 12 pixels, fewer than k = 16, so tiles run out of keys before the merge
    want = bottomup_topk_reference(outputs, None, (0,), (10, 12), 3, 1, 16)
    _assert_same(_kernel(outputs, None, 1, 16, (4, 8)), want)
    assert want[1][0, 0, :4].tolist() == [0.5] * 4 and want[2][0, 0, 0].tolist() == [5, 4]


def test_op_backends_agree_for_bf16_and_stride4_outputs(poison_kernel_outputs):
    # bf16 outputs (autocast) are read as float32; maps smaller than the input are resized first (the torch
    # part of the triton backend), then merged without mirroring by the kernel.
    outputs, flipped = synthetic_bottomup_outputs(3, FLIP3, 6, 8, seed=3)
    args = dict(flip_indices=FLIP3, input_size=(24, 32), nms_kernel=5, nms_padding=2, top_k=4)
    _assert_same(bottomup_topk(outputs, flipped, backend="triton", **args),
                 bottomup_topk(outputs, flipped, backend="torch", **args))
    args["input_size"] = (6, 8)
    half, half_flipped = outputs.bfloat16(), flipped.bfloat16()
    _assert_same(bottomup_topk(half, half_flipped, backend="triton", **args),
                 bottomup_topk(half, half_flipped, backend="torch", **args))


def test_op_checks_inputs():
    outputs = torch.rand(1, 6, 8, 8)
    args = dict(flip_indices=FLIP3, input_size=(8, 8), nms_kernel=5, nms_padding=2, top_k=4)
    with pytest.raises(ValueError, match="nms_kernel must be 2"):
        bottomup_topk(outputs, **{**args, "nms_kernel": 4})
    with pytest.raises(ValueError, match="top_k must be in"):
        bottomup_topk(outputs, **{**args, "top_k": 65})
    with pytest.raises(ValueError, match="backend must be one of"):
        bottomup_topk(outputs, backend="tpu", **args)


def test_fake_and_opcheck():
    outputs, flipped = synthetic_bottomup_outputs(2, FLIP3, 8, 8, seed=1)
    index = torch.tensor(FLIP3, dtype=torch.int32)
    torch.library.opcheck(torch.ops.srpose_fast.bottomup_topk_triton.default, (outputs, flipped, index, True, 2, 3),
                          test_utils=("test_schema", "test_faketensor"))


def test_compile_fullgraph_smoke():
    # backend="eager": Dynamo traces bottomup_topk into one graph through the registered fake.
    outputs, flipped = synthetic_bottomup_outputs(2, FLIP3, 8, 10, seed=4)
    args = dict(flip_indices=FLIP3, input_size=(8, 10), nms_kernel=3, nms_padding=1, top_k=3)
    fn = torch.compile(lambda o, f: bottomup_topk(o, f, backend="triton", **args), fullgraph=True, backend="eager")
    _assert_same(fn(outputs, flipped), bottomup_topk(outputs, flipped, backend="torch", **args))


@pytest.mark.cuda
@pytest.mark.parametrize("stride,pad", [(1, 5), (1, 2), (4, 2)])
def test_image_size_maps_cuda(stride, pad):
    # A 480x640 image at 512x704: the SR head's maps, or a stride-4 head's (resized first); 8 people.
    outputs, flipped = synthetic_bottomup_outputs(8, COCO.flip_indices, 512 // stride, 704 // stride,
                                                  seed=stride + pad, margin=3)
    args = dict(flip_indices=COCO.flip_indices, input_size=(512, 704), nms_kernel=2 * pad + 1, nms_padding=pad,
                top_k=30)
    _assert_same(bottomup_topk(outputs.cuda(), flipped.cuda(), backend="triton", **args),
                 tuple(t.cuda() for t in bottomup_topk(outputs.cuda(), flipped.cuda(), backend="torch", **args)))
