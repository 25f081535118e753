"""Lets `pytest benchmarks --benchmark-only` collect the benchmark files of this directory (bench_*.py).

The project's pytest configuration collects only tests/ and test_*.py files, so a plain `pytest` run never
times anything; this hook adds bench_*.py when pytest is pointed at benchmarks/.
"""
import pytest


def pytest_collect_file(file_path, parent):
    # a file named on the command line is collected by pytest itself already
    if file_path.suffix == ".py" and file_path.name.startswith("bench_") and not parent.session.isinitpath(file_path):
        return pytest.Module.from_parent(parent, path=file_path)
    return None
