"""Compile every Triton kernel of srpose_fast for the H200 (sm_90) on a machine without a GPU.

The interpreter that runs the kernel tests on the CPU executes the kernels' semantics but never meets
Triton's compiler: a kernel can pass every interpreted test and still fail to compile for a GPU, or ask
for more shared memory than the GPU has. This script drives the real launchers of `srpose_fast.kernels`
with CPU tensors through every variant the ops use (dtypes, decode methods, flip, transform, the four SR
head shapes, the loss's five outputs), with a stand-in driver under which Triton compiles for sm_90 and
never launches. For each compiled kernel it records the variant, the shared memory it asks for, the
registers and spills that ptxas reports, and the warps an SM could hold at once (estimated from those).

    python tests/kernels/hopper_compile.py [--json FILE] [--quick] [--only LABEL_PREFIX]

Run it without TRITON_INTERPRET (tests/kernels/test_hopper_compile.py runs it in a fresh process).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

# An H100/H200 block may use up to 227 KiB of shared memory (opt-in); Triton refuses a kernel above it.
HOPPER_MAX_SHARED_BYTES = 232448
# Per SM on sm_90: 64K registers (given to warps in units of 256), 228 KiB of shared memory (1 KiB of it
# reserved per block), at most 64 warps and 32 blocks.
SM_REGISTERS, SM_SHARED_BYTES, SM_WARPS, SM_BLOCKS = 65536, 233472, 64, 32
JOINTS = 17
COCO_FLIP = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# (kernel size, channels per joint, upscale, low-resolution H, W) of SRPose's four SR heads (256x192 input)
SR_HEADS = [(3, 16, 8, 8, 6), (5, 8, 4, 16, 12), (7, 4, 2, 32, 24), (9, 4, 4, 64, 48)]
LOSS_SIZES = [(8, 6), (64, 48), (256, 192)]


class StandInHopperDriver:
    """What Triton asks of a driver to compile: the target, a device and a stream (never used: no launch)."""

    def get_current_target(self):
        from triton.backends.compiler import GPUTarget

        return GPUTarget("cuda", 90, 32)

    def get_current_device(self):
        return 0

    def get_current_stream(self, device=None):
        return 0

    def get_active_torch_device(self):
        return torch.device("cpu")


def compile_only(record):
    """Make every kernel launch compile (warm-up) instead of running, and report what it compiled."""
    import triton
    from triton.runtime.jit import JITFunction

    from srpose_fast.kernels import launch

    triton.runtime.driver.set_active(StandInHopperDriver())
    launch.check_kernel_device = lambda op, tensor, kernel: None  # CPU tensors stand in for CUDA ones
    run = JITFunction.run

    def warmup_run(self, *args, grid, warmup, **kwargs):
        kernel = run(self, *args, grid=grid, warmup=True, **kwargs)
        record(self.fn.__name__, kernel)
        return kernel

    JITFunction.run = warmup_run


def ptxas_report(ptx: str) -> dict:
    """Registers and spill bytes as ptxas -v reports them for this PTX.

    Triton bundles two ptxas builds (one per CUDA release); the PTX's .version picks the one that takes it.
    """
    import triton

    bundled = Path(triton.__file__).parent / "backends" / "nvidia" / "bin"
    arch = re.search(r"^\.target\s+(\S+)", ptx, re.M).group(1)
    errors = []
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "kernel.ptx"
        src.write_text(ptx)
        for ptxas in (bundled / "ptxas-blackwell", bundled / "ptxas"):
            if not ptxas.exists():
                continue
            command = [str(ptxas), f"--gpu-name={arch}", "-v", str(src), "-o", str(Path(tmp) / "k.cubin")]
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode == 0:
                break
            errors.append(f"{ptxas.name}: {result.stderr.strip()[:300]}")
        else:
            raise RuntimeError("no bundled ptxas assembled the PTX: " + "; ".join(errors))
    out = result.stderr
    registers = re.search(r"Used (\d+) registers", out)
    stores = re.search(r"(\d+) bytes spill stores", out)
    loads = re.search(r"(\d+) bytes spill loads", out)
    return {"arch": arch, "registers": int(registers.group(1)) if registers else None,
            "spill_stores": int(stores.group(1)) if stores else 0, "spill_loads": int(loads.group(1)) if loads else 0}


def resident_warps(registers: int, shared_bytes: int, num_warps: int) -> int:
    """Warps of this kernel one SM can hold at once (CUDA's occupancy rules; an estimate, not a measurement)."""
    per_warp = -(-registers * 32 // 256) * 256
    blocks = min(SM_REGISTERS // (per_warp * num_warps), SM_SHARED_BYTES // (shared_bytes + 1024),
                 SM_WARPS // num_warps, SM_BLOCKS)
    return blocks * num_warps


def variants(quick: bool):
    """(label, call) for every launcher variant; `quick` keeps one of each kernel and method."""
    from srpose_fast.codecs.bottomup_targets import joint_windows
    from srpose_fast.kernels import bottomup_loss, decode, multi_stage_loss, sr_head, sr_head_decode

    dtypes = ["float32", "bfloat16"] if quick else list(DTYPES)
    gen = torch.Generator().manual_seed(0)

    def rand(*shape, dtype="float32"):
        return torch.rand(*shape, generator=gen).to(DTYPES[dtype])

    for ks, e, r, h, w in (SR_HEADS[-1:] if quick else SR_HEADS):
        for dtype in dtypes:
            x, weight, bias = rand(2, JOINTS * e, h, w, dtype=dtype), rand(JOINTS * r * r, e, ks, ks, dtype=dtype), \
                rand(JOINTS * r * r, dtype=dtype)
            yield f"sr_head k{ks} e{e} r{r} {dtype}", lambda x=x, weight=weight, bias=bias, r=r: (
                sr_head.sr_head_forward(x, weight, bias, r))
            grad = rand(2, JOINTS, h * r, w * r, dtype=dtype)
            yield f"sr_head backward k{ks} e{e} r{r} {dtype}", lambda grad=grad, x=x, weight=weight, r=r: (
                sr_head.sr_head_backward(grad, x, weight, r))

    flip_indices = torch.tensor(COCO_FLIP)
    center, scale = rand(2, 2), rand(2, 2)
    for method in ("argmax", "shift", "dark", "dark_udp"):
        for flip in (False, True):
            for dtype in (["float32"] if quick else dtypes):
                maps = rand(2, JOINTS, 64, 48, dtype=dtype)
                yield f"decode {method} flip={flip} {dtype}", lambda maps=maps, m=method, f=flip: (
                    decode.decode_heatmaps_forward(maps, maps if f else None, flip_indices if f else None,
                                                   m != "dark_udp", m, 11, center, scale))
            for dtype in dtypes:
                ks, e, r, h, w = SR_HEADS[-1]
                emb, weight, bias = rand(2, JOINTS * e, h, w, dtype=dtype), rand(JOINTS * r * r, e, ks, ks,
                                                                                 dtype=dtype), rand(JOINTS * r * r,
                                                                                                    dtype=dtype)
                yield f"sr_head_decode {method} flip={flip} {dtype}", lambda emb=emb, weight=weight, bias=bias, \
                    m=method, f=flip: sr_head_decode.sr_head_decode_forward(
                        emb, weight, bias, r, emb if f else None, flip_indices if f else None, m != "dark_udp", m, 11,
                        center, scale)

    full_h, full_w = LOSS_SIZES[-1]
    keypoints = rand(2, JOINTS, 2) * torch.tensor([full_w, full_h])
    visible = torch.ones(2, JOINTS)
    for method in ("msra", "unbiased", "udp"):
        for h, w in (LOSS_SIZES if method == "msra" and not quick else LOSS_SIZES[-1:]):
            for dtype in dtypes:
                pred = rand(2, JOINTS, h, w, dtype=dtype)
                yield f"loss {method} {h}x{w} {dtype}", lambda pred=pred, m=method: (
                    multi_stage_loss.heatmap_mse_loss_forward(pred, keypoints, visible, 8.0, full_h, full_w, m))
                yield f"loss backward {method} {h}x{w} {dtype}", lambda pred=pred, m=method: (
                    multi_stage_loss.heatmap_mse_loss_backward(torch.ones(()), pred, keypoints, visible, 8.0,
                                                               full_h, full_w, m))

    # The bottom-up loss at the SR head's 512x512 (sigma 8) and the baseline's 128x128 (sigma 2), 30 people.
    for size, sigma in ((512, 8.0), (128, 2.0)):
        joints = torch.cat([rand(2, 30, JOINTS, 2) * size, torch.ones(2, 30, JOINTS, 1)], dim=-1)
        windows, mask = joint_windows(joints, size, sigma), torch.ones(2, size, size)
        for dtype in (dtypes if size == 512 else ["float32"]):
            pred = rand(2, JOINTS, size, size, dtype=dtype)
            yield f"bottomup loss {size} {dtype}", lambda pred=pred, w=windows, m=mask, s=sigma: (
                bottomup_loss.bottomup_heatmap_loss_forward(pred, w, m, s))
            yield f"bottomup loss backward {size} {dtype}", lambda pred=pred, w=windows, m=mask, s=sigma: (
                bottomup_loss.bottomup_heatmap_loss_backward(torch.ones(2), pred, w, m, s))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, help="write the compiled kernels here")
    parser.add_argument("--quick", action="store_true", help="one dtype per op beyond float32, fewer shapes")
    parser.add_argument("--only", default="", help="only the variants whose label starts with this")
    args = parser.parse_args(argv)
    if os.environ.get("TRITON_INTERPRET") == "1":
        parser.error("run without TRITON_INTERPRET=1: the interpreter never compiles")

    compiled, current = [], {"label": ""}
    compile_only(lambda name, kernel: compiled.append({"variant": current["label"], "kernel": name,
                                                       "compiled": kernel}))
    failures, labels, started = [], [], time.perf_counter()
    for label, call in variants(args.quick):
        if not label.startswith(args.only):
            continue
        current["label"] = label
        labels.append(label)
        try:
            call()
        except Exception as err:  # noqa: BLE001 - every variant is tried; the failures are the report
            failures.append({"variant": label, "error": f"{type(err).__name__}: {err}"[:2000]})
            print(f"FAILED {label}: {type(err).__name__}: {str(err)[:300]}", flush=True)

    import triton

    rows = []
    for entry in compiled:
        kernel = entry.pop("compiled")
        row = {**entry, "shared_bytes": int(kernel.metadata.shared), "num_warps": int(kernel.metadata.num_warps),
               "num_stages": int(kernel.metadata.num_stages), "cubin_bytes": len(kernel.asm.get("cubin", b"")),
               **ptxas_report(kernel.asm["ptx"])}
        row["fits"] = row["shared_bytes"] <= HOPPER_MAX_SHARED_BYTES and row["cubin_bytes"] > 0
        row["warps_per_sm"] = resident_warps(row["registers"], row["shared_bytes"], row["num_warps"])
        rows.append(row)
        print(f"{row['variant']:<42} {row['kernel']:<28} smem {row['shared_bytes']:>7} B  warps {row['num_warps']}"
              f"  regs {row['registers']:>3}  spills {row['spill_stores']}/{row['spill_loads']} B"
              f"  ~{row['warps_per_sm']} warps/SM{'' if row['fits'] else '  DOES NOT FIT'}", flush=True)
    report = {"triton": triton.__version__, "torch": torch.__version__, "target": "cuda sm_90",
              "seconds": time.perf_counter() - started, "variants": labels, "kernels": rows, "failures": failures}
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    bad = failures or [r for r in rows if not r["fits"]]
    print(f"{len(rows)} kernels compiled for sm_90 with Triton {triton.__version__} in {report['seconds']:.0f} s; "
          f"{len(failures)} variants failed, {sum(not r['fits'] for r in rows)} kernels do not fit")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
