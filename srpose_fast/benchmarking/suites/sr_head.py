"""sr_head: grouped conv (groups = K joints) + pixel shuffle, forward and forward+backward.

One case per SR-head stage shape of SRPose (SPEC.md section 1: e = 16/8/4/4 channels per joint,
kernels 3/5/7/9, upscale 8/4/2/4, on the 8x6, 16x12, 32x24 and 64x48 feature maps of a 256x192 crop)
x batch x dtype x pass. Providers: the reference (`sr_head_reference`: cuDNN/ATen grouped conv +
pixel_shuffle), `torch.compile` of the reference (mode "max-autotune" on a GPU, for forward+backward of
the final head at batch 64: compiling every shape would take longer than the rest of the suite), and the
op's triton and cuda backends. Forward+backward cases run first.

Bytes: x, weight, bias read and the output written (forward); plus grad_out, x, weight read and the
three gradients written (backward). FLOPs: 2 N (r^2 K) e k^2 h w per convolution, three convolutions'
worth for forward+backward.
"""
from __future__ import annotations

import torch

from ...ops.sr_head import SUPPORTED_BACKENDS, sr_head, sr_head_reference
from ..cases import Case, Prepared, Provider, Unavailable, compare_low_precision, once_per_inputs
from .common import DTYPES, Settings, compile_mode, require_backend

JOINTS = 17
# (stage, e, kernel, upscale, h, w) for a 256x192 crop
STAGES = ((0, 16, 3, 8, 8, 6), (1, 8, 5, 4, 16, 12), (2, 4, 7, 2, 32, 24), (3, 4, 9, 4, 64, 48))
FP32_FLOOR = 1e-5  # fp32 sums in another order: ~1e-6 of the output's scale
# The torch.compile provider runs for forward+backward (the target) of the final head at batch 64
# only: max-autotune takes minutes per shape.
COMPILED_CASE = (True, 3, 64)  # (backward, stage, batch)


def _make_inputs(n, e, k, r, h, w, dtype, device, backward):
    def make():
        x = torch.randn(n, JOINTS * e, h, w, device=device).relu_().to(dtype)
        weight = (0.05 * torch.randn(JOINTS * r * r, e, k, k, device=device)).to(dtype)
        bias = (0.01 * torch.randn(JOINTS * r * r, device=device)).to(dtype)
        inputs = {"x": x, "w": weight, "b": bias, "r": r}
        if backward:
            for name in ("x", "w", "b"):
                inputs[name].requires_grad_(True)
            inputs["g"] = torch.randn(n, JOINTS, r * h, r * w, device=device).to(dtype)
        return inputs
    return make


def _runner(fn, backward: bool, before_call=None):
    def run(inputs):
        if before_call is not None:
            before_call()
        out = fn(inputs["x"], inputs["w"], inputs["b"], inputs["r"])
        if not backward:
            return out
        grads = torch.autograd.grad(out, (inputs["x"], inputs["w"], inputs["b"]), inputs["g"])
        return (out, *grads)
    return run


def _oracle(inputs, backward: bool):
    """The reference in float64 on the same (possibly rounded) values."""
    up = {key: (v.detach().double().requires_grad_(v.requires_grad) if isinstance(v, torch.Tensor) else v)
          for key, v in inputs.items()}
    return _runner(sr_head_reference, backward)(up)


def _check(backward: bool):
    """flash-attention's rule against a float64 oracle, as tests/ops/test_sr_head.py judges the op: the
    error at most twice the reference's own (in its dtype) plus, at the output's scale, 1e-5 for float32
    (sums in another order) or one unit of the 16-bit dtype. The oracle matters in float32 on a GPU too:
    cuDNN may run the reference's float32 convolution in TF32."""
    oracle = once_per_inputs(lambda inputs: _oracle(inputs, backward))

    def check(inputs, expected, output, provider):
        dtype = inputs["x"].dtype
        floor = FP32_FLOOR if dtype == torch.float32 else torch.finfo(dtype).eps
        return compare_low_precision(output, expected, oracle(inputs), floor=floor)
    return check


def _backend_provider(backend: str, settings: Settings, backward: bool) -> Provider:
    def setup():
        require_backend(backend, settings.device, op="sr_head", supported=SUPPORTED_BACKENDS)
        return _runner(lambda x, w, b, r: sr_head(x, w, b, r, backend=backend), backward)
    return Provider(backend, setup)


def _compiled_provider(settings: Settings, backward: bool, stage: int, batch: int) -> Provider:
    def setup():
        mode = compile_mode(settings, autotune=True)
        if (backward, stage, batch) != COMPILED_CASE:
            raise Unavailable(f"compiled reference timed for fwd+bwd of the final head (stage {COMPILED_CASE[1]}) "
                              f"at batch {COMPILED_CASE[2]} only (max-autotune compile time)")
        compiled = torch.compile(sr_head_reference, mode=mode, dynamic=False)
        # CUDA graphs (max-autotune) reuse output buffers: mark each call as a new step.
        step = torch.compiler.cudagraph_mark_step_begin if mode == "max-autotune" else None
        return Prepared(run=_runner(compiled, backward, before_call=step), note=f"mode={mode}")
    return Provider("torch.compile(reference)", setup)


def build_cases(settings: Settings) -> list[Case]:
    batches = settings.pick((1, 32, 64, 256), (1, 4), (1,))
    stages = settings.pick(STAGES[::-1], STAGES[::-1], STAGES[:1])  # the final (largest) head first
    cases = []
    for backward in (True, False):  # the targets are fwd+bwd: first, in case a time limit cuts the suite
        op = "fwd+bwd" if backward else "fwd"
        for dtype_name, dtype in settings.dtypes(tiny=DTYPES).items():
            for stage, e, k, r, h, w in stages:
                for n in batches:
                    elem = torch.finfo(dtype).bits // 8
                    x_b, w_b, b_b = n * JOINTS * e * h * w, JOINTS * r * r * e * k * k, JOINTS * r * r
                    out_b = n * JOINTS * r * r * h * w
                    moved = (x_b + w_b + b_b + out_b) * elem
                    if backward:
                        moved += (out_b + x_b + w_b + x_b + w_b + b_b) * elem
                    flops = 2.0 * n * JOINTS * r * r * e * k * k * h * w * (3 if backward else 1)
                    cases.append(Case(
                        suite="sr_head", op=op, name=f"{op} stage{stage} k{k} r{r} N{n}",
                        shape=f"({n},{JOINTS * e},{h},{w})->({n},{JOINTS},{r * h},{r * w})", dtype=dtype_name,
                        batch=n, make_inputs=_make_inputs(n, e, k, r, h, w, dtype, settings.device, backward),
                        reference=Provider("reference", lambda b=backward: _runner(sr_head_reference, b)),
                        providers=[_backend_provider(b, settings, backward) for b in ("triton", "cuda")]
                        + [_compiled_provider(settings, backward, stage, n)],
                        check=_check(backward), bytes_moved=moved, flops=flops, rotate=True))
    return cases
