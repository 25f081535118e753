"""Packaging: the Python package (with `kernels/` installed as `srpose_fast.kernels`) and the compiled
extensions.

Metadata lives in pyproject.toml; this file says where the packages are and which extensions to build.
Install with `pip install -e . --no-build-isolation` so the installed torch (and pybind11) are the ones
built against.

Each compiled extension comes from one function returning a list of setuptools extensions (empty when its
toolchain is missing); `ext_modules` is their concatenation. Every extension is optional: a failed build
leaves that module out and the package falls back (the deploy decoder then raises an ImportError that says
how to build it; the ops warn once and use their Triton or torch backend).
"""
import glob
import os
import sys

from setuptools import find_packages, setup


def decoder_extensions():
    """srpose_fast.deploy._decoder: the portable C++ heatmap decoder (C++17, pybind11, no torch)."""
    try:
        from pybind11.setup_helpers import Pybind11Extension
    except ImportError:
        print("srpose-fast: pybind11 is not installed; skipping srpose_fast.deploy._decoder "
              "(pip install pybind11, then reinstall)")
        return []
    return [
        Pybind11Extension(
            "srpose_fast.deploy._decoder",
            sources=["csrc/decode/heatmap_decoder.cpp", "csrc/decode/python_bindings.cpp"],
            include_dirs=["csrc/decode"],
            cxx_std=17,
            extra_compile_args=[] if sys.platform == "win32" else ["-O3"],
            extra_link_args=[] if sys.platform == "win32" else ["-pthread"],
            optional=True,
        )
    ]


def cuda_extensions():
    """srpose_fast._C: the CUDA C++ ops (csrc/ops.cpp + csrc/cuda/*.cu), registered as torch.ops.srpose_fast.<job>_cuda.

    Built only with a CUDA build of torch and a CUDA toolkit (nvcc, CUDA_HOME); otherwise skipped with a note.
    The target GPUs come from TORCH_CUDA_ARCH_LIST, by default sm_80, sm_86 and sm_90 (H100/H200).
    """
    try:
        import torch
        from torch.utils.cpp_extension import CUDA_HOME, CUDAExtension
    except ImportError:
        print("srpose-fast: torch is not installed; skipping the CUDA extension srpose_fast._C")
        return []
    if torch.version.cuda is None:
        print(f"srpose-fast: torch {torch.__version__} is a CPU build; skipping the CUDA extension srpose_fast._C "
              "(the ops use their Triton or torch backends)")
        return []
    if CUDA_HOME is None:
        print("srpose-fast: no CUDA toolkit found (set CUDA_HOME or put nvcc on PATH); skipping the CUDA "
              "extension srpose_fast._C")
        return []
    os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "8.0;8.6;9.0")
    return [
        CUDAExtension(
            "srpose_fast._C",
            sources=["csrc/ops.cpp"] + sorted(glob.glob("csrc/cuda/*.cu")),
            extra_compile_args={"cxx": ["-O3"], "nvcc": ["-O3", "-lineinfo"]},
            optional=True,
        )
    ]


def build_ext_command(cuda_modules):
    """torch's BuildExtension when the CUDA extension is built (it drives nvcc), else setuptools' default."""
    if not cuda_modules:
        return {}
    from torch.utils.cpp_extension import BuildExtension

    return {"build_ext": BuildExtension}


packages = find_packages(include=["srpose_fast", "srpose_fast.*"])
cuda_modules = cuda_extensions()
setup(
    packages=packages + ["srpose_fast.kernels"],
    package_dir={"srpose_fast.kernels": "kernels"},
    ext_modules=decoder_extensions() + cuda_modules,
    cmdclass=build_ext_command(cuda_modules),
)
