"""Compile every Triton kernel of srpose_fast for the H200 (sm_90) on a machine without a GPU.

The interpreter that runs the kernel tests on the CPU executes the kernels' semantics but never meets
Triton's compiler: a kernel can pass every interpreted test and still fail to compile for a GPU, or ask
for more shared memory than the GPU has. This script drives the real launchers of `srpose_fast.kernels`
with CPU tensors through every variant the ops accept (`variants`: dtypes, batch 1 and 256, decode methods,
flip, every blur kernel, the SR head shapes, the loss's outputs), with a stand-in driver under which Triton
compiles for sm_90 and never launches. For each compiled kernel it records the variant, the shared memory
it asks for, the registers and spills that ptxas reports, and the warps an SM could hold at once (estimated
from those). `--jobs N` compiles in N processes (the CI test uses 2).

    python tests/kernels/hopper_compile.py [--json FILE] [--quick] [--only LABEL_PREFIX] [--jobs N]

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
# (kernel size, channels per joint, upscale, low-resolution H, W) of SRPose's four SR heads (256x192 input);
# the last is also the SR head of the sr_* models (9x9, x4, from 64x48).
SR_HEADS = [(3, 16, 8, 8, 6), (5, 8, 4, 16, 12), (7, 4, 2, 32, 24), (9, 4, 4, 64, 48)]
LOSS_SIZES = [(8, 6), (64, 48), (256, 192)]
DECODE_SIZES = [(64, 48), (256, 192)]  # heatmaps of the simple heads and of the SR heads
BATCHES = (1, 256)
METHODS = ("argmax", "shift", "dark", "dark_udp")


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
    """(label, call) for every launcher variant the ops accept: SR head configurations x dtypes x batch 1 and
    256 (forward and backward); decode and the heatmap-free path for every method, flip, dtype, batch, and
    every blur kernel up to MAX_BLUR_KERNEL (all of them with flip in float32; with the other dtypes and
    without flip at the default 11); the loss for its targets, output sizes and dtypes; the bottom-up top-k
    for each NMS padding, flip mode and dtype; the bottom-up loss at both head sizes. `quick` keeps one of each
    kernel and method. Inputs are uninitialised: nothing runs, only the shapes matter."""
    from srpose_fast.codecs.bottomup_targets import joint_windows
    from srpose_fast.kernels import bottomup_loss, bottomup_topk, decode, multi_stage_loss, sr_head, sr_head_decode
    from srpose_fast.ops.decode import MAX_BLUR_KERNEL

    dtypes = ["float32", "bfloat16"] if quick else list(DTYPES)
    batches = BATCHES[:1] if quick else BATCHES

    def empty(*shape, dtype="float32"):
        return torch.empty(*shape, dtype=DTYPES[dtype])

    for ks, e, r, h, w in (SR_HEADS[-1:] if quick else SR_HEADS):
        for dtype in dtypes:
            for n in batches:
                x, weight, bias = (empty(n, JOINTS * e, h, w, dtype=dtype),
                                   empty(JOINTS * r * r, e, ks, ks, dtype=dtype), empty(JOINTS * r * r, dtype=dtype))
                yield f"sr_head k{ks} e{e} r{r} {dtype} N={n}", lambda x=x, weight=weight, bias=bias, r=r: (
                    sr_head.sr_head_forward(x, weight, bias, r))
                grad = empty(n, JOINTS, h * r, w * r, dtype=dtype)
                yield f"sr_head backward k{ks} e{e} r{r} {dtype} N={n}", lambda grad=grad, x=x, weight=weight, r=r: (
                    sr_head.sr_head_backward(grad, x, weight, r))

    flip_indices = torch.tensor(COCO_FLIP, dtype=torch.int32)
    blur_kernels = range(1, MAX_BLUR_KERNEL + 1, 2)
    for method in METHODS:
        for flip in (False, True):
            for dtype in (["float32"] if quick else dtypes):
                for kb in (blur_kernels if method.startswith("dark") and flip and dtype == "float32" and not quick
                           else [11]):
                    for n in batches:
                        for height, width in (DECODE_SIZES[:1] if quick else DECODE_SIZES):
                            maps = empty(n, JOINTS, height, width, dtype=dtype)
                            center, scale = empty(n, 2), empty(n, 2)
                            yield (f"decode {method} flip={flip} {dtype} kb={kb} {height}x{width} N={n}",
                                   lambda maps=maps, m=method, f=flip, kb=kb, c=center, s=scale: (
                                       decode.decode_heatmaps_forward(maps, maps if f else None,
                                                                      flip_indices if f else None, m != "dark_udp",
                                                                      m, kb, c, s)))
                        ks, e, r, h, w = SR_HEADS[-1]
                        emb, weight, bias = (empty(n, JOINTS * e, h, w, dtype=dtype),
                                             empty(JOINTS * r * r, e, ks, ks, dtype=dtype),
                                             empty(JOINTS * r * r, dtype=dtype))
                        center, scale = empty(n, 2), empty(n, 2)
                        yield (f"sr_head_decode {method} flip={flip} {dtype} kb={kb} N={n}",
                               lambda emb=emb, weight=weight, bias=bias, m=method, f=flip, kb=kb, c=center, s=scale: (
                                   sr_head_decode.sr_head_decode_forward(emb, weight, bias, r, emb if f else None,
                                                                         flip_indices if f else None,
                                                                         m != "dark_udp", m, kb, c, s)))

    # bottom-up flip merge + NMS + top-k: NMS padding 5 (HRNet-W32) and 2 (ResNet-50); the flipped outputs from
    # the network (mirror), already resized and flipped back (stride-4 heads), or none; top-30
    for pad in ((5,) if quick else (5, 2)):
        for mode in (("mirror",) if quick else ("mirror", "resized", "none")):
            for dtype in (["float32"] if quick else dtypes):
                for n in batches:
                    outputs = empty(n, 2 * JOINTS, 64, 96, dtype=dtype)
                    yield (f"bottomup_topk pad={pad} {mode} {dtype} N={n}",
                           lambda o=outputs, pad=pad, mode=mode: bottomup_topk.bottomup_topk_forward(
                               o, None if mode == "none" else o, flip_indices, mode == "mirror", pad, 30))

    full_h, full_w = LOSS_SIZES[-1]
    for method in ("msra", "unbiased", "udp"):
        for h, w in (LOSS_SIZES if method == "msra" and not quick else LOSS_SIZES[-1:]):
            for dtype in dtypes:
                for n in batches:
                    keypoints, visible = torch.zeros(n, JOINTS, 2), torch.ones(n, JOINTS)
                    pred = empty(n, JOINTS, h, w, dtype=dtype)
                    yield f"loss {method} {h}x{w} {dtype} N={n}", lambda pred=pred, m=method, k=keypoints, v=visible: (
                        multi_stage_loss.heatmap_mse_loss_forward(pred, k, v, 8.0, full_h, full_w, m))
                    yield (f"loss backward {method} {h}x{w} {dtype} N={n}",
                           lambda pred=pred, m=method, k=keypoints, v=visible: (
                               multi_stage_loss.heatmap_mse_loss_backward(torch.ones(()), pred, k, v, 8.0, full_h,
                                                                          full_w, m)))

    # The bottom-up loss at the SR head's 512x512 (sigma 8) and the baseline's 128x128 (sigma 2), 30 people.
    gen = torch.Generator().manual_seed(0)
    for size, sigma in ((512, 8.0), (128, 2.0)):
        for n in batches:
            joints = torch.cat([torch.rand(n, 30, JOINTS, 2, generator=gen) * size, torch.ones(n, 30, JOINTS, 1)], -1)
            windows, mask = joint_windows(joints, size, sigma), torch.ones(n, size, size)
            for dtype in (dtypes if size == 512 else ["float32"]):
                pred = empty(n, JOINTS, size, size, dtype=dtype)
                yield f"bottomup loss {size} {dtype} N={n}", lambda pred=pred, w=windows, m=mask, s=sigma: (
                    bottomup_loss.bottomup_heatmap_loss_forward(pred, w, m, s))
                yield f"bottomup loss backward {size} {dtype} N={n}", lambda pred=pred, w=windows, m=mask, s=sigma: (
                    bottomup_loss.bottomup_heatmap_loss_backward(torch.ones(n), pred, w, m, s))


def batch_dependent(rows: list[dict]) -> list[str]:
    """Variants (labels without the batch) whose kernels compiled differently at batch 1 and 256: the batch
    size must change only the grid, or every ragged last batch compiles again."""
    compiled: dict[str, dict[str, set]] = {}
    for row in rows:
        label, _, batch = row["variant"].rpartition(" N=")
        if not label:
            continue  # a variant at one batch size only
        compiled.setdefault(label, {}).setdefault(batch, set()).add((row["kernel"], row["hash"]))
    return sorted(label for label, by_batch in compiled.items() if len({frozenset(v) for v in by_batch.values()}) > 1)


def variant_group(label: str) -> str:
    """The label without its batch size: the variants a shard keeps together (they share binaries)."""
    return label.rpartition(" N=")[0] or label


def compile_shard(quick: bool, only: str, shard: int, shards: int) -> dict:
    """Compile this shard's variants (every `shards`-th group of `variants`) and report them."""
    import triton

    compiled, current = [], {"label": ""}
    compile_only(lambda name, kernel: compiled.append({"variant": current["label"], "kernel": name,
                                                       "compiled": kernel}))
    failures, labels, groups = [], [], {}
    for label, call in variants(quick):
        group = groups.setdefault(variant_group(label), len(groups))
        if not label.startswith(only) or group % shards != shard:
            continue
        current["label"] = label
        labels.append(label)
        try:
            call()
        except Exception as err:  # noqa: BLE001 - every variant is tried; the failures are the report
            failures.append({"variant": label, "error": f"{type(err).__name__}: {err}"[:2000]})
            print(f"FAILED {label}: {type(err).__name__}: {str(err)[:300]}", flush=True)

    rows, assembled = [], {}
    for entry in compiled:
        kernel = entry.pop("compiled")
        if kernel.hash not in assembled:  # a variant that differs only in the batch reuses the same binary
            assembled[kernel.hash] = ptxas_report(kernel.asm["ptx"])
        row = {**entry, "hash": kernel.hash, "shared_bytes": int(kernel.metadata.shared),
               "num_warps": int(kernel.metadata.num_warps),
               "num_stages": int(kernel.metadata.num_stages), "cubin_bytes": len(kernel.asm.get("cubin", b"")),
               **assembled[kernel.hash]}
        row["fits"] = row["shared_bytes"] <= HOPPER_MAX_SHARED_BYTES and row["cubin_bytes"] > 0
        row["warps_per_sm"] = resident_warps(row["registers"], row["shared_bytes"], row["num_warps"])
        rows.append(row)
    return {"triton": triton.__version__, "variants": labels, "kernels": rows, "failures": failures,
            "binaries": sorted(assembled)}


def compile_in_processes(args, jobs: int) -> list[dict]:
    """Each shard in its own process (the compiles are CPU-bound and Triton compiles one at a time)."""
    with tempfile.TemporaryDirectory() as tmp:
        commands = [[sys.executable, __file__, "--shard", str(i), "--jobs", str(jobs), "--only", args.only,
                     "--json", str(Path(tmp) / f"shard{i}.json")] + (["--quick"] if args.quick else [])
                    for i in range(jobs)]
        procs = [subprocess.Popen(command) for command in commands]
        if any(proc.wait() not in (0, 1) for proc in procs):
            raise RuntimeError("a compile shard crashed")
        return [json.loads((Path(tmp) / f"shard{i}.json").read_text()) for i in range(jobs)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, help="write the compiled kernels here")
    parser.add_argument("--quick", action="store_true", help="one dtype per op beyond float32, fewer shapes")
    parser.add_argument("--only", default="", help="only the variants whose label starts with this")
    parser.add_argument("--jobs", type=int, default=1, help="compile in this many processes")
    parser.add_argument("--shard", type=int, default=None, help=argparse.SUPPRESS)  # one process of --jobs
    args = parser.parse_args(argv)
    if os.environ.get("TRITON_INTERPRET") == "1":
        parser.error("run without TRITON_INTERPRET=1: the interpreter never compiles")
    if args.shard is not None:
        report = compile_shard(args.quick, args.only, args.shard, args.jobs)
        args.json.write_text(json.dumps(report))
        return 0

    started = time.perf_counter()
    shards = (compile_in_processes(args, args.jobs) if args.jobs > 1
              else [compile_shard(args.quick, args.only, 0, 1)])
    rows = [row for shard in shards for row in shard["kernels"]]
    failures = [failure for shard in shards for failure in shard["failures"]]
    binaries = {h for shard in shards for h in shard["binaries"]}
    for row in rows:
        print(f"{row['variant']:<52} {row['kernel']:<28} smem {row['shared_bytes']:>7} B  warps {row['num_warps']}"
              f"  regs {row['registers']:>3}  spills {row['spill_stores']}/{row['spill_loads']} B"
              f"  ~{row['warps_per_sm']} warps/SM{'' if row['fits'] else '  DOES NOT FIT'}", flush=True)
    by_batch = batch_dependent(rows)
    version = shards[0]["triton"]
    report = {"triton": version, "torch": torch.__version__, "target": "cuda sm_90",
              "seconds": time.perf_counter() - started, "variants": [v for shard in shards for v in shard["variants"]],
              "kernels": rows, "failures": failures, "binaries": len(binaries), "batch_dependent": by_batch}
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    bad = failures or by_batch or [r for r in rows if not r["fits"]]
    print(f"{len(rows)} kernels ({len(binaries)} binaries) compiled for sm_90 with Triton {version} in "
          f"{report['seconds']:.0f} s; {len(failures)} variants failed, {sum(not r['fits'] for r in rows)} kernels "
          f"do not fit, {len(by_batch)} variants compile differently at batch 1 and 256 {by_batch[:4]}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
