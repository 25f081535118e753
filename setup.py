"""Packaging: the Python package (with `kernels/` installed as `srpose_fast.kernels`) and the compiled
extensions.

Metadata lives in pyproject.toml; this file says where the packages are and which extensions to build.
Install with `pip install -e . --no-build-isolation` so the installed torch (and pybind11) are the ones
built against.

Each compiled extension comes from one function returning a list of setuptools extensions (empty when its
toolchain is missing); `ext_modules` is their concatenation. Every extension is optional: a failed build
leaves that module out and the package falls back (the deploy decoder then raises an ImportError that says
how to build it).
"""
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


packages = find_packages(include=["srpose_fast", "srpose_fast.*"])
setup(
    packages=packages + ["srpose_fast.kernels"],
    package_dir={"srpose_fast.kernels": "kernels"},
    ext_modules=decoder_extensions(),
)
