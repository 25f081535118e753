"""Export a top-down model as one graph from normalised crops to keypoints: ONNX or a torch.export program.

The graph's inputs, in this order: `images` (N, 3, H, W) float32, RGB normalised as the model was trained
(`data.transforms.normalize_image`: ImageNet mean and std on 0-255 values), `center` (N, 2) and `scale`
(N, 2) of the crops (mmpose's convention: the crop is scale * PIXEL_STD pixels wide and high, centred on
center). Its outputs: `keypoints` (N, K, 2) in image pixels and `scores` (N, K). The flip test and the
decoding run inside the graph: it is the model's own `predict` on the torch backend, traced (`PoseGraph`),
whose decode (`ops.decode.decode_heatmaps_reference`) has no Python branch on tensor values and no
data-dependent shape. The batch dimension is dynamic.

ONNX files use opset `ONNX_OPSET` and standard operators only, written by `torch.onnx.export(dynamo=True)`;
`graph_metadata` (keypoints, input size, normalisation, decoder, flip test, opset) goes into the model's
metadata_props, and into `srpose_fast.json` inside a torch.export (.pt2) archive.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from pathlib import Path

import torch
import torch.nn as nn

from ..codecs.conventions import DECODE_METHODS, PIXEL_STD
from ..data.transforms import IMAGENET_MEAN, IMAGENET_STD
from ..engine.checkpoint import atomic_write
from ..models.pose_model import TOP_DOWN, model_kind
from .graph_spec import EXPORT_FORMATS, INPUT_NAMES, METADATA_FILE, ONNX_OPSET, OUTPUT_NAMES



class PoseGraph(nn.Module):
    """`forward(images, center, scale) -> (keypoints, scores)`: the model's `predict` with the torch backend
    and fixed test settings (flip test, decode method, blur kernel). Wraps the model without copying it;
    call in eval mode."""

    def __init__(self, model: nn.Module, *, flip_test: bool = False, method: str | None = None,
                 blur_kernel: int | None = None):
        super().__init__()
        method = model.codec.decode_method if method is None else method
        if method not in DECODE_METHODS:
            raise ValueError(f"method must be one of {DECODE_METHODS}, got {method!r}")
        if model_kind(model) != TOP_DOWN:
            raise ValueError("only top-down models export (a bottom-up model groups its people on the host)")
        self.model = model
        self.flip_test = bool(flip_test)
        self.method = method
        self.blur_kernel = model.codec.blur_kernel if blur_kernel is None else blur_kernel

    def forward(self, images: torch.Tensor, center: torch.Tensor, scale: torch.Tensor):
        return self.model.predict(images, flip_test=self.flip_test, method=self.method, center=center, scale=scale,
                                  blur_kernel=self.blur_kernel, backend="torch")

    def example_inputs(self, batch: int = 2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Random normalised crops and their boxes (a crop of the input size at the image origin)."""
        height, width = self.model.input_size
        generator = torch.Generator().manual_seed(0)
        images = torch.randn(batch, 3, height, width, generator=generator)
        center = torch.tensor([[width / 2, height / 2]]).repeat(batch, 1)
        scale = torch.tensor([[width / PIXEL_STD, height / PIXEL_STD]]).repeat(batch, 1)
        return images, center, scale


def graph_metadata(graph: PoseGraph, opset: int | None = None) -> dict:
    """What a deployment needs to feed and read the graph (JSON-serialisable values)."""
    model = graph.model
    kset = model.keypoint_set
    meta = {
        "inputs": list(INPUT_NAMES), "outputs": list(OUTPUT_NAMES),
        "input_size_hw": list(model.input_size), "heatmap_size_hw": list(model.heatmap_size),
        "channel_order": "RGB", "mean_0_255": [m * 255.0 for m in IMAGENET_MEAN],
        "std_0_255": [s * 255.0 for s in IMAGENET_STD], "pixel_std": PIXEL_STD,
        "keypoint_set": kset.name, "keypoint_names": list(kset.names), "skeleton": [list(l) for l in kset.skeleton],
        "flip_test": graph.flip_test, "decode_method": graph.method, "blur_kernel": graph.blur_kernel,
    }
    if opset is not None:
        meta["onnx_opset"] = opset
    return meta


@contextlib.contextmanager
def _quiet_exporter():
    """Without torch's export notes that concern neither the user nor this graph: torchvision's ops missing from
    the ONNX registry, an internal pytree deprecation, the shared batch axis keeping its name."""
    registry_log = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registry_log.level
    registry_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
            warnings.filterwarnings("ignore", message=r"# The axis name: batch will not be used")
            yield
    finally:
        registry_log.setLevel(level)


def _dynamic_batch() -> dict:
    batch = torch.export.Dim("batch", min=1)
    return {"images": {0: batch}, "center": {0: batch}, "scale": {0: batch}}


def _prepared(model: nn.Module, flip_test: bool, method: str | None, blur_kernel: int | None) -> PoseGraph:
    return PoseGraph(model.cpu().float(), flip_test=flip_test, method=method, blur_kernel=blur_kernel).eval()


def export_program(graph: PoseGraph) -> torch.export.ExportedProgram:
    """`torch.export.export` of the graph, with a dynamic batch."""
    with torch.no_grad(), _quiet_exporter():
        return torch.export.export(graph, graph.example_inputs(), dynamic_shapes=_dynamic_batch(), strict=False)


def export_onnx(model: nn.Module, path: str | Path, *, flip_test: bool = False, method: str | None = None,
                blur_kernel: int | None = None, opset: int = ONNX_OPSET) -> Path:
    """Write the model's `PoseGraph` as an ONNX file (written atomically); returns the path."""
    import onnx

    graph = _prepared(model, flip_test, method, blur_kernel)
    with torch.no_grad(), _quiet_exporter():
        program = torch.onnx.export(graph, graph.example_inputs(), input_names=list(INPUT_NAMES),
                                    output_names=list(OUTPUT_NAMES), dynamic_shapes=_dynamic_batch(),
                                    opset_version=opset, dynamo=True, verbose=False)
    proto = program.model_proto
    for key, value in graph_metadata(graph, opset).items():
        proto.metadata_props.add(key=key, value=json.dumps(value))
    onnx.checker.check_model(proto)
    data = proto.SerializeToString()
    return atomic_write(path, lambda f: f.write(data))


def export_torch_program(model: nn.Module, path: str | Path, *, flip_test: bool = False,
                         method: str | None = None, blur_kernel: int | None = None) -> Path:
    """Write the model's `PoseGraph` as a torch.export archive (.pt2, `torch.export.load` reads it), with
    `graph_metadata` in its extra file `srpose_fast.json`; returns the path."""
    graph = _prepared(model, flip_test, method, blur_kernel)
    program = export_program(graph)
    buffer = io.BytesIO()
    torch.export.save(program, buffer, extra_files={METADATA_FILE: json.dumps(graph_metadata(graph))})
    return atomic_write(path, lambda f: f.write(buffer.getvalue()))


def export_model(model: nn.Module, path: str | Path, *, format: str = "onnx", **options) -> Path:
    """`export_onnx` or `export_torch_program` by `format` (one of EXPORT_FORMATS)."""
    if format == "onnx":
        return export_onnx(model, path, **options)
    if format == "torch-export":
        return export_torch_program(model, path, **options)
    raise ValueError(f"format must be one of {EXPORT_FORMATS}, got {format!r}")
