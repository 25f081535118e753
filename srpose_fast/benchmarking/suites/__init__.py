"""The benchmark suites: name -> function building its cases from `common.Settings`.

A suite name may carry zoo model names for the model suites: "train:srpose_res50",
"infer:srpose_hrnet_w32,srpose_res50".
"""
from __future__ import annotations

import importlib

from .common import PROFILES, Settings


def _lazy(module: str, function: str):
    """The suite's case builder, imported when the suite runs (a suite's missing dependency breaks only it)."""
    def build_cases(settings: Settings):
        return getattr(importlib.import_module(f"{__name__}.{module}"), function)(settings)
    return build_cases


SUITES = {
    "sr_head": _lazy("sr_head", "build_cases"),
    "decode": _lazy("decode", "build_cases"),
    "sr_head_decode": _lazy("sr_head_decode", "build_cases"),
    "loss": _lazy("loss", "build_cases"),
    "train": _lazy("models", "build_train_cases"),
    "infer": _lazy("models", "build_infer_cases"),
    "deploy": _lazy("deploy", "build_cases"),
    "export": _lazy("export", "build_cases"),
    "bottomup": _lazy("bottomup", "build_cases"),
    "loss_bottomup": _lazy("loss_bottomup", "build_cases"),
}
MODEL_SUITES = ("train", "infer")


def parse_suite(spec: str) -> tuple[str, tuple[str, ...]]:
    """"train:srpose_res50" -> ("train", ("srpose_res50",)); "decode" -> ("decode", ())."""
    name, _, models_part = spec.partition(":")
    if name not in SUITES:
        raise ValueError(f"unknown benchmark suite {name!r}; known: {', '.join(SUITES)}")
    chosen = tuple(m for m in models_part.split(",") if m)
    if chosen and name not in MODEL_SUITES:
        raise ValueError(f"suite {name!r} takes no model names (only {', '.join(MODEL_SUITES)} do)")
    return name, chosen


__all__ = ["MODEL_SUITES", "PROFILES", "SUITES", "Settings", "parse_suite"]
