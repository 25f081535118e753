"""export: an exported model under onnxruntime on the CPU against torch eager, images/s at batch 1 and 8.

The graph is what `srpose-fast export --flip-test` writes: `deploy.export.PoseGraph` (crops, center, scale ->
image keypoints, scores; the flip test and SRPose's shift decoder inside), exported once per model with
`export_onnx` (dynamic batch) when the provider is set up, which is not timed. Both sides run on the host CPU
whatever the run's device, in float32, with the same number of threads (torch's), results on the host.
- reference (torch eager): the same `PoseGraph` called eagerly (`model.predict` with the torch backend);
- "onnxruntime": the ONNX file in an onnxruntime CPUExecutionProvider session.
Checked before timing as the infer suite checks: every keypoint within 1e-3 heatmap pixels of torch's or on a
near-tie of the flip-merged heatmaps, every score the map's maximum within 1e-3 of its range.

Models: srpose_res50 at 256x192 (full), srpose_demo at 128x96 (quick) and at 64x64, batch 1 only (tiny).
FLOPs and bytes are not counted (the infer suite counts the model's).
"""
from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import torch

from ...codecs.flip import flip_merge
from ...models import build_model
from ..cases import Case, Prepared, Provider, Unavailable, check_keypoints_on_maps
from .common import Settings, sync_to_host

TINY_INPUT = (64, 64)
METHOD = "shift"


def _graph(model):
    from ...deploy.export import PoseGraph

    return PoseGraph(model, flip_test=True, method=METHOD).eval()


def _inputs(model, n: int):
    def make():
        images = torch.randn(n, 3, *model.input_size)
        center, scale = model.codec.crop_center_scale(n)  # the crop itself as the box: input pixels out
        return {"images": images, "center": center.contiguous(), "scale": scale.contiguous()}
    return make


def _torch_eager(model) -> Provider:
    graph = _graph(model)

    def setup():
        @torch.no_grad()
        def run(inputs):
            return sync_to_host(*graph(inputs["images"], inputs["center"], inputs["scale"]))

        @torch.no_grad()
        def check_output(inputs):
            keypoints, scores = run(inputs)
            images = inputs["images"]
            maps = flip_merge(model(images), model(images.flip(3)), model.codec.flip_indices)
            return keypoints, scores, maps
        return Prepared(run=run, check_output=check_output)
    return Provider("reference", setup, host_sync=True)  # torch eager


def _onnxruntime(model, exported: dict) -> Provider:
    def setup():
        try:
            import onnxruntime as ort
        except ImportError:
            raise Unavailable("onnxruntime is not installed (pip install onnxruntime onnx onnxscript)") from None
        from ...deploy.export import export_onnx
        from ...deploy.graph_spec import INPUT_NAMES, OUTPUT_NAMES

        if "path" not in exported:  # once per model, shared by its batch sizes
            folder = tempfile.mkdtemp(prefix="srpose_bench_export_")
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
            exported["path"] = export_onnx(model, Path(folder) / "model.onnx", flip_test=True, method=METHOD)
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = ort.InferenceSession(str(exported["path"]), options, providers=["CPUExecutionProvider"])

        def run(inputs):
            return tuple(session.run(list(OUTPUT_NAMES), {name: inputs[name].numpy() for name in INPUT_NAMES}))
        return run
    return Provider("onnxruntime", setup, host_sync=True)


def _check(model):
    def check(inputs, expected, output, provider):
        ref_keypoints, ref_scores, maps = expected
        to_maps = model.codec.to_heatmap  # keypoints in input pixels -> the maps' pixels
        return check_keypoints_on_maps(maps, to_maps(torch.as_tensor(ref_keypoints)), ref_scores,
                                       to_maps(torch.as_tensor(output[0])), output[1], value_tol=1e-3, kp_atol=1e-3)
    return check


def build_cases(settings: Settings) -> list[Case]:
    name = settings.pick("srpose_res50", "srpose_demo", "srpose_demo")
    batches = settings.pick((1, 8), (1, 8), (1,))
    torch.manual_seed(0)
    model = build_model(name, backend="torch", input_size=settings.pick(None, None, TINY_INPUT)).eval()
    height, width = model.input_size
    exported: dict = {}
    return [Case(suite="export", op=f"export {name}", name=f"{name} N{n}", shape=f"({n},3,{height},{width})",
                 dtype="float32", batch=n, make_inputs=_inputs(model, n), reference=_torch_eager(model),
                 providers=[_onnxruntime(model, exported)], check=_check(model), items_name="images",
                 extra={"model": name, "device": "cpu"})
            for n in batches]
