"""The CMake build of the portable decoder: configure, build, ctest, install, and a consumer project that
finds the installed package. Skipped when cmake (or a C++ compiler) is absent."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CMAKE = shutil.which("cmake")
CTEST = shutil.which("ctest")
CXX = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")

pytestmark = pytest.mark.skipif(not (CMAKE and CTEST and CXX), reason="needs cmake, ctest and a C++ compiler")

CONSUMER_CMAKE = """
cmake_minimum_required(VERSION 3.18)
project(srpose_consumer LANGUAGES CXX)
find_package(srpose REQUIRED)
add_executable(consumer main.cpp)
target_link_libraries(consumer PRIVATE srpose::decode)
"""

CONSUMER_MAIN = """
#include <heatmap_decoder.h>
#include <cstdio>
#include <vector>
int main() {
  std::vector<float> maps(2 * 8 * 6, 0.0f);
  maps[3 * 6 + 4] = 1.0f;
  maps[48 + 5 * 6 + 1] = 2.0f;
  srpose::decode::DecodeOptions options;
  options.method = srpose::decode::parse_method("argmax");
  std::vector<float> keypoints(4), scores(2);
  srpose::decode::decode_heatmaps(maps.data(), nullptr, {1, 2, 8, 6}, nullptr, nullptr, options,
                                  keypoints.data(), scores.data());
  std::printf("%g %g %g %g %g %g\\n", keypoints[0], keypoints[1], keypoints[2], keypoints[3], scores[0], scores[1]);
  return 0;
}
"""


def run(*cmd, cwd=None):
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    assert out.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """Build with tests, run ctest, install into a prefix; returns (build dir, prefix)."""
    tmp = tmp_path_factory.mktemp("cmake")
    build, prefix = tmp / "build", tmp / "prefix"
    run(CMAKE, "-S", str(ROOT), "-B", str(build), "-DSRPOSE_BUILD_TESTS=ON", "-DCMAKE_BUILD_TYPE=Release")
    run(CMAKE, "--build", str(build), "-j", "2")
    run(CMAKE, "--install", str(build), "--prefix", str(prefix))
    return build, prefix


def test_ctest_passes(installed):
    build, _ = installed
    out = run(CTEST, "--test-dir", str(build), "--output-on-failure")
    assert "100% tests passed" in out and "heatmap_decoder" in out


def test_install_layout(installed):
    _, prefix = installed
    assert (prefix / "include" / "srpose" / "heatmap_decoder.h").is_file()
    libs = [p for p in prefix.rglob("libsrpose_decode*") if p.is_file()]
    assert libs, f"no libsrpose_decode under {prefix}"
    assert list(prefix.rglob("srposeConfig.cmake")) and list(prefix.rglob("srposeTargets.cmake"))


def test_consumer_finds_the_installed_package(installed, tmp_path):
    _, prefix = installed
    src, build = tmp_path / "src", tmp_path / "build"
    src.mkdir()
    (src / "CMakeLists.txt").write_text(CONSUMER_CMAKE)
    (src / "main.cpp").write_text(CONSUMER_MAIN)
    run(CMAKE, "-S", str(src), "-B", str(build), f"-DCMAKE_PREFIX_PATH={prefix}")
    run(CMAKE, "--build", str(build))
    exe = next(p for p in build.rglob("consumer*") if p.is_file() and os.access(p, os.X_OK))
    assert run(str(exe)).split() == ["4", "3", "1", "5", "1", "2"]
