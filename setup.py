"""Packaging: the pure-Python package, with `kernels/` installed as `srpose_fast.kernels`.

Metadata lives in pyproject.toml; this file only says where the packages are.
Install with `pip install -e . --no-build-isolation` so the installed torch is the one built against.
"""
from setuptools import find_packages, setup

packages = find_packages(include=["srpose_fast", "srpose_fast.*"])
setup(
    packages=packages + ["srpose_fast.kernels"],
    package_dir={"srpose_fast.kernels": "kernels"},
)
