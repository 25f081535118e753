"""Every Triton kernel compiles for the H200 (sm_90), in every variant the ops launch, and fits its shared
memory: what the kernel tests, run by the interpreter on the CPU, cannot see.

Runs tests/kernels/hopper_compile.py in a fresh process without TRITON_INTERPRET and with an empty
Triton cache (a cached binary must not hide a compile failure). Registers and spills are reported there,
not asserted: they are a matter of speed, which the benchmarks measure.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

triton = pytest.importorskip("triton")
if not (Path(triton.__file__).parent / "backends" / "nvidia").is_dir():
    pytest.skip("this Triton has no NVIDIA backend", allow_module_level=True)

SCRIPT = Path(__file__).with_name("hopper_compile.py")
KERNELS = {"_sr_head_fwd_kernel", "_sr_head_bwd_input_kernel", "_sr_head_bwd_weight_kernel", "_decode_argmax_kernel",
           "_decode_refine_kernel", "_sr_argmax_kernel", "_sr_refine_kernel", "_heatmap_mse_fwd_kernel",
           "_heatmap_mse_bwd_kernel", "_bottomup_topk_kernel", "_bottomup_heatmap_loss_fwd_kernel",
           "_bottomup_heatmap_loss_bwd_kernel"}
HOPPER_MAX_SHARED_BYTES = 232448  # 227 KiB, the most one block may use on an H100 / H200


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hopper")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp / "cache")
    result = subprocess.run([sys.executable, str(SCRIPT), "--jobs", "2", "--json", str(tmp / "report.json")], env=env,
                            capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return json.loads((tmp / "report.json").read_text())


def test_every_variant_compiles(report):
    assert not report["failures"]
    assert report["variants"]
    assert {row["variant"] for row in report["kernels"]} == set(report["variants"])
    assert {row["kernel"] for row in report["kernels"]} == KERNELS


def test_every_blur_kernel_the_ops_accept_is_covered(report):
    from srpose_fast.ops.decode import MAX_BLUR_KERNEL

    for op in ("decode", "sr_head_decode"):
        for method in ("dark", "dark_udp"):
            covered = {int(v.split(" kb=")[1].split()[0]) for v in report["variants"]
                       if v.startswith(f"{op} {method} flip=True float32 ")}
            assert covered == set(range(1, MAX_BLUR_KERNEL + 1, 2)), (op, method)


def test_compiled_kernels_do_not_depend_on_the_batch_size(report):
    # batch 1 and 256 compile the same binaries (only the grid changes), so no batch size compiles anew
    assert any(v.endswith(" N=256") for v in report["variants"])
    assert report["batch_dependent"] == []


def test_every_kernel_is_hopper_code_that_fits_the_shared_memory(report):
    for row in report["kernels"]:
        assert row["arch"] == "sm_90a" and row["cubin_bytes"] > 0, row
        assert 0 <= row["shared_bytes"] <= HOPPER_MAX_SHARED_BYTES, row
        assert row["registers"] and row["registers"] <= 255, row
