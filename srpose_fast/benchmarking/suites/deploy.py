"""deploy: the portable C++ decoder of `srpose_fast.deploy` on host heatmaps, against what it replaces.

The deployment decoder runs where there is no torch: numpy heatmaps in, image keypoints out. Cases:
DARK and SRPose's shift x 64x48, 256x192 (the `decode` suite's Gaussian maps) x batch 1/32/256,
float32 numpy maps on the host whatever the run's device (the `decode` suite's "cpp (host)" rows
include the copy from a GPU; these do not).

References: "dark": DARK as mmpose 1.x runs it (`reference.dark_decode.mmpose_dark_decode`: numpy and
OpenCV, one instance at a time); "shift": SRPose's own decode (`reference.decode.srpose_decode`, on
CPU tensors). Providers: "cpp" (`HeatmapDecoder`, threads chosen from the core count and the work)
and "cpp 1 thread".

Bytes: the maps read once. On a GPU run the roofline measured is the GPU's, which says nothing about
host code, so there the rows carry no bytes and no roofline fraction.
"""
from __future__ import annotations

import torch

from ...deploy import HeatmapDecoder, decoder_available
from ..cases import Case, Provider, Unavailable
from .common import Settings
from .decode import JOINTS, decoded_keypoints_check, make_decode_inputs, reference_host_decode

METHODS = ("dark", "shift")
HOST = torch.device("cpu")


def _reference(method: str) -> Provider:
    def setup():
        return lambda inputs: reference_host_decode(inputs["maps"], method, inputs["center_np"], inputs["scale_np"])
    return Provider("reference", setup)


def _cpp(method: str, num_threads: int | None) -> Provider:
    def setup():
        if not decoder_available():
            raise Unavailable("the C++ decoder srpose_fast.deploy._decoder is not built (pip install -e .)")
        decoder = HeatmapDecoder(method, num_threads=num_threads)
        return lambda inputs: decoder.decode(inputs["maps"].numpy(), center=inputs["center_np"],
                                             scale=inputs["scale_np"])
    return Provider("cpp" if num_threads is None else f"cpp {num_threads} thread", setup)


def build_cases(settings: Settings) -> list[Case]:
    batches = settings.pick((1, 32, 256), (1, 32, 256), (2,))
    sizes = settings.pick(((64, 48), (256, 192)), ((64, 48), (256, 192)), ((64, 48),))
    on_host = settings.device.type == "cpu"
    cases = []
    for method in METHODS:
        for height, width in sizes:
            for n in batches:
                cases.append(Case(
                    suite="deploy", op=method, name=f"{method} {height}x{width} N{n}",
                    shape=f"({n},{JOINTS},{height},{width})", dtype="float32", batch=n,
                    make_inputs=make_decode_inputs(n, height, width, flip=False, device=HOST),
                    reference=_reference(method), providers=[_cpp(method, None), _cpp(method, 1)],
                    check=decoded_keypoints_check(method, height, width),
                    bytes_moved=n * JOINTS * height * width * 4 if on_host else 0, items_name="instances",
                    rotate=True))
    return cases
