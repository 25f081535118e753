"""No op path synchronises with the host (GPU only): every fused backend of every op runs under
`torch.cuda.set_sync_debug_mode("error")` and inside a captured CUDA graph, whose replay gives the eager
results. A first call outside (the warm-up that compiles the kernels and fills the per-device caches of
flip indices and blur taps) is allowed to do host work; the calls after it are not.
"""
import pytest
import torch

from srpose_fast.ops import decode_heatmaps, multi_stage_loss, sr_head, sr_head_decode

pytestmark = pytest.mark.cuda


def calls(backend):
    """(name, call) for one call of each op on small CUDA inputs; each returns a tuple of tensors."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 17 * 4, 8, 6, generator=gen).cuda()
    weight = torch.randn(17 * 16, 4, 9, 9, generator=gen).cuda() * 0.05
    bias = torch.randn(17 * 16, generator=gen).cuda()
    maps = torch.rand(2, 17, 32, 24, generator=gen).cuda()
    center, scale = torch.rand(2, 2).cuda() * 100, torch.rand(2, 2).cuda() + 0.5
    keypoints, visible = torch.rand(2, 17, 2).cuda() * 24, torch.ones(2, 17).cuda()

    def sr_head_fwd_bwd():  # forward and backward; forward only under no_grad
        leaf = x.detach().requires_grad_(torch.is_grad_enabled())
        out = sr_head(leaf, weight, bias, 4, backend=backend)
        return (out, *torch.autograd.grad(out.sum(), leaf)) if leaf.requires_grad else (out,)

    def loss_fwd_bwd():
        leaf = maps.detach().requires_grad_(torch.is_grad_enabled())
        loss = multi_stage_loss([leaf], keypoints, visible, sigma=2.0, stage_weights=(1.0,), backend=backend)
        return (loss, *torch.autograd.grad(loss, leaf)) if leaf.requires_grad else (loss,)

    return [
        ("sr_head", sr_head_fwd_bwd),
        ("decode_heatmaps", lambda: decode_heatmaps(maps, flipped=maps, method="dark", center=center, scale=scale,
                                                    backend=backend)),
        ("sr_head_decode", lambda: sr_head_decode(x, weight, bias, 4, flipped_emb=x, method="dark_udp",
                                                  center=center, scale=scale, backend=backend)),
        ("multi_stage_loss", loss_fwd_bwd),
    ]


def test_no_host_synchronisation(fused_backend):
    for name, call in calls(fused_backend):
        call()  # warm-up
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            call()
        finally:
            torch.cuda.set_sync_debug_mode("default")


@torch.no_grad()
def test_captured_cuda_graph_replays_the_eager_results(fused_backend):
    for name, call in calls(fused_backend):
        eager = call()
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            call()  # warm-up on the capture stream
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            captured = call()
        graph.replay()
        torch.cuda.synchronize()
        for got, want in zip(captured, eager):
            torch.testing.assert_close(got, want, rtol=0, atol=0, equal_nan=True, msg=lambda m: f"{name}: {m}")


@pytest.mark.parametrize("op, kernels", [("decode_heatmaps", 2), ("sr_head_decode", 2)])
def test_triton_decoders_launch_two_kernels_per_call(op, kernels):
    """The argmax pass and the refinement, nothing else: flip indices and blur taps come from the per-device
    caches, and no dummy tensors are filled (before: about ten small launches per call)."""
    call = dict(calls("triton"))[op]
    call()  # warm-up
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        call()
        torch.cuda.synchronize()
    launched = [e.name for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    assert len(launched) == kernels, launched
