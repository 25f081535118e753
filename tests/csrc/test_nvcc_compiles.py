"""Every CUDA source of srpose_fast._C compiles for sm_90 against the installed torch's headers.

This runs without a GPU and without a CUDA build of torch: the CPU wheel ships the ATen/c10 CUDA headers,
and nvcc only compiles (`-c`), it never links or runs. A kernel or host function that does not compile
fails its test; the test is skipped only where nvcc is absent. The files compile in parallel, two at a
time (a few minutes of CPU in all on this project's 2-core machines). The fixture prints the wall time
and, from ptxas (`--resource-usage`), each kernel's registers and spills: `pytest tests/csrc -s`.
Those are reported, not asserted (a matter of speed, which the benchmarks measure).
"""
from __future__ import annotations

import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest
import torch
from torch.utils import cpp_extension

ROOT = Path(__file__).resolve().parents[2]
CSRC = ROOT / "csrc"
SOURCES = sorted((CSRC / "cuda").glob("*.cu")) + [CSRC / "ops.cpp"]
NVCC = shutil.which("nvcc") or (str(Path(os.environ["CUDA_HOME"]) / "bin" / "nvcc")
                                if os.environ.get("CUDA_HOME") else None)
WORKERS = 2

pytestmark = pytest.mark.skipif(NVCC is None or not Path(NVCC).exists(), reason="nvcc is not installed")


def _flags() -> list[str]:
    """What torch's BuildExtension passes that matters for compiling: includes, ABI, extension name."""
    includes = cpp_extension.include_paths()
    flags = [f"-I{p}" for p in includes] + [
        f"-I{sysconfig.get_paths()['include']}",
        "-DTORCH_EXTENSION_NAME=_C",
        "-DTORCH_API_INCLUDE_EXTENSION_H",
        f"-D_GLIBCXX_USE_CXX11_ABI={int(torch.compiled_with_cxx11_abi())}",
    ]
    # A CPU wheel lacks this generated header (it only defines C10_CUDA_BUILD_SHARED_LIBS); c10 lets us skip it.
    if not any((Path(p) / "c10" / "cuda" / "impl" / "cuda_cmake_macros.h").exists() for p in includes):
        flags.append("-DC10_CUDA_NO_CMAKE_CONFIGURE_FILE")
    return flags


def _command(source: Path, out_dir: Path) -> list[str]:
    obj = out_dir / (source.name + ".o")
    if source.suffix == ".cu":
        # COMMON_NVCC_FLAGS: what BuildExtension gives nvcc (no __half operators, relaxed constexpr)
        return [NVCC, "-c", "-std=c++17", "-arch=sm_90", "-O3", "-lineinfo", "--resource-usage",
                "--compiler-options", "-fPIC",
                *cpp_extension.COMMON_NVCC_FLAGS, *_flags(), str(source), "-o", str(obj)]
    # ops.cpp is plain C++ (the schemas); BuildExtension hands it to the host compiler.
    cxx = shutil.which("c++") or shutil.which("g++")
    if cxx is None:
        return [NVCC, "-c", "-std=c++17", "-x", "c++", "--compiler-options", "-fPIC", *_flags(), str(source),
                "-o", str(obj)]
    return [cxx, "-c", "-std=c++17", "-O2", "-fPIC", *_flags(), str(source), "-o", str(obj)]


def _compile(source: Path, out_dir: Path) -> tuple[int, str, float]:
    start = time.perf_counter()
    proc = subprocess.run(_command(source, out_dir), capture_output=True, text=True)
    return proc.returncode, proc.stdout + proc.stderr, time.perf_counter() - start


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> dict[str, tuple[int, str, float]]:
    out_dir = tmp_path_factory.mktemp("nvcc")
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=WORKERS) as pool:
        futures = {src.name: pool.submit(_compile, src, out_dir) for src in SOURCES}
        results = {name: fut.result() for name, fut in futures.items()}
    total = time.perf_counter() - start
    per_file = ", ".join(f"{name} {res[2]:.0f}s" for name, res in results.items())
    print(f"\ncompiled {len(results)} files in {total:.0f}s wall with {WORKERS} workers ({per_file})",
          file=sys.stderr)
    for name, (_, output, _) in results.items():
        for kernel, registers, stores, loads in kernel_resources(output):
            print(f"{name:<22} {kernel[:90]:<90} regs {registers:>3}  spills {stores}/{loads} B", file=sys.stderr)
    return results


def _demangle(names: list[str]) -> list[str]:
    cxxfilt = shutil.which("c++filt")
    if cxxfilt is None or not names:
        return names
    out = subprocess.run([cxxfilt], input="\n".join(names), capture_output=True, text=True).stdout.splitlines()
    return out if len(out) == len(names) else names


def kernel_resources(ptxas_output: str) -> list[tuple[str, int, int, int]]:
    """(kernel, registers, spill store bytes, spill load bytes) for each sm_90 entry function ptxas compiled."""
    entries, current, spills = [], None, (0, 0)
    for line in ptxas_output.splitlines():
        if m := re.search(r"Compiling entry function '([^']+)' for 'sm_90", line):
            current = m.group(1)
        elif current and (m := re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", line)):
            spills = (int(m.group(1)), int(m.group(2)))
        elif current and (m := re.search(r"Used (\d+) registers", line)):
            entries.append((current, int(m.group(1)), *spills))
            current, spills = None, (0, 0)
    names = _demangle([e[0] for e in entries])
    return [(name, *rest) for name, (_, *rest) in zip(names, entries)]


def test_sources_found():
    assert (CSRC / "ops.cpp").exists()
    assert {p.name for p in SOURCES} >= {"sr_head.cu", "decode.cu", "sr_head_decode.cu", "multi_stage_loss.cu"}


@pytest.mark.parametrize("name", [p.name for p in SOURCES])
def test_compiles(compiled, name):
    returncode, output, _ = compiled[name]
    errors = "\n".join(line for line in output.splitlines() if "error" in line.lower())
    assert returncode == 0, f"{name} does not compile:\n{errors or output[-4000:]}"


@pytest.mark.parametrize("name", [p.name for p in SOURCES if p.suffix == ".cu"])
def test_every_cuda_source_holds_sm90_kernels(compiled, name):
    """Device code was generated: a kernel template never instantiated would compile to host code only."""
    assert kernel_resources(compiled[name][1]), f"{name}: ptxas compiled no sm_90 kernel"
