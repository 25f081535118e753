"""What a benchmark case is, and the one loop that runs it: check every provider, then time it.

A `Case` holds one input configuration of one op (`make_inputs`), its reference provider and the
providers under test. `run_case` runs the reference once to get the expected output, then for each
provider: set it up (a provider that cannot run here raises `Unavailable` and becomes a "skipped" row
with the reason), run it once on the same inputs, compare with `case.check`, and only if that passes
time it. Every row records the check it passed (or failed); a failed check is never timed.

Row statuses: "ok" (checked, then timed), "skipped" (unavailable, with the reason), "failed-check"
(wrong output; not timed), "error" (an exception, with its message).
"""
from __future__ import annotations

import gc
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from .roofline import Roofline
from .timing import benchmark


class Unavailable(Exception):
    """A provider that cannot run in this environment; the message is the reason recorded."""


@dataclass
class CheckResult:
    passed: bool
    error: float  # the measured discrepancy, in the units `metric` names
    tol: float
    metric: str
    detail: str = ""

    def as_dict(self) -> dict:
        return {"passed": bool(self.passed), "error": float(self.error), "tol": float(self.tol),
                "metric": self.metric, "detail": self.detail}


@dataclass
class Prepared:
    """A provider ready to run: `run(inputs)` is timed; `check_output(inputs)` (default: `run`) gives what
    the check compares (for a training step: loss and gradients before the optimiser moves anything)."""
    run: Callable[[Any], Any]
    check_output: Callable[[Any], Any] | None = None
    note: str = ""  # recorded in the row (e.g. torch.compile's mode)


@dataclass
class Provider:
    name: str  # the row's "backend"
    setup: Callable[[], Prepared | Callable[[Any], Any]]  # may raise Unavailable
    dtype: str | None = None  # when the provider runs in another dtype than the case's
    host_sync: bool = False  # the call waits on the host: timed with perf_counter + synchronize


@dataclass
class Case:
    suite: str
    op: str  # groups cases in the plot (e.g. "fwd", "fwd+bwd", "shift+flip", "train step")
    name: str  # unique within the suite
    shape: str
    dtype: str
    batch: int
    make_inputs: Callable[[], Any]
    reference: Provider
    providers: list[Provider]
    check: Callable[[Any, Any, Any, Provider], CheckResult]  # (inputs, reference output, output, provider)
    bytes_moved: float = 0.0
    flops: float | Callable[[], float] = 0.0  # a callable is evaluated after the reference ran
    items: int = 0  # samples per call (images, instances); 0 means batch
    items_name: str = "samples"
    rotate: bool = False
    extra: dict = field(default_factory=dict)


def prepare(provider: Provider) -> Prepared:
    prepared = provider.setup()
    return prepared if isinstance(prepared, Prepared) else Prepared(run=prepared)


def _reuse_first(first: Any, make: Callable[[], Any]) -> Callable[[], Any]:
    """A make_inputs that hands out `first` once, then fresh input sets."""
    handed = [False]

    def make_inputs():
        if not handed[0]:
            handed[0] = True
            return first
        return make()

    return make_inputs


def _release(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _short(err: BaseException) -> str:
    text = f"{type(err).__name__}: {err}".strip()
    return text if len(text) <= 400 else text[:397] + "..."


def run_case(case: Case, *, device: torch.device, roofline: Roofline | None, timing: dict,
             log: Callable[[str], None] = print) -> list[dict]:
    """Rows for the reference and every provider of `case` (see the module docstring)."""
    base = {"suite": case.suite, "op": case.op, "case": case.name, "shape": case.shape, "batch": case.batch,
            "items": case.items or case.batch, "items_name": case.items_name, "bytes": float(case.bytes_moved)}
    rows: list[dict] = []

    def row(provider: Provider, status: str, **fields) -> dict:
        r = {**base, "dtype": provider.dtype or case.dtype, "backend": provider.name, "status": status,
             "reason": "", "check": None, "median_ms": None, "speedup": None, "items_per_s": None,
             "roofline_fraction": None, "flops": None, **fields}
        rows.append(r)
        if status != "ok":
            log(_describe(r))
        return r

    def time_it(provider: Provider, prepared: Prepared, inputs: Any):
        return benchmark(prepared.run, _reuse_first(inputs, case.make_inputs), device=device, rotate=case.rotate,
                         host_sync=provider.host_sync, **timing)

    try:
        inputs = case.make_inputs()
        prepared_ref = prepare(case.reference)
        expected = (prepared_ref.check_output or prepared_ref.run)(inputs)
        ref_timing = time_it(case.reference, prepared_ref, inputs)
        del prepared_ref
    except Unavailable as err:
        row(case.reference, "skipped", reason=str(err))
        return rows
    except Exception as err:  # noqa: BLE001 - recorded in the results, the run goes on
        row(case.reference, "error", reason=_short(err))
        log(traceback.format_exc())
        return rows
    flops = float(case.flops() if callable(case.flops) else case.flops)
    base["flops"] = flops

    def finish(r: dict, t) -> None:
        r.update(t.as_dict())
        r["items_per_s"] = r["items"] / (t.median_ms * 1e-3)
        r["speedup"] = ref_timing.median_ms / t.median_ms
        if roofline is not None:
            r["roofline_fraction"] = roofline.fraction(t.median_ms, bytes_moved=case.bytes_moved, flops=flops,
                                                       dtype=r["dtype"])

    ref_row = row(case.reference, "ok", check={"passed": True, "oracle": True, "metric": "reference",
                                                "error": 0.0, "tol": 0.0, "detail": "the oracle"}, flops=flops)
    finish(ref_row, ref_timing)
    log(_describe(ref_row))

    for provider in case.providers:
        try:
            prepared = prepare(provider)
        except Unavailable as err:
            row(provider, "skipped", reason=str(err), flops=flops)
            continue
        except Exception as err:  # noqa: BLE001
            row(provider, "error", reason=_short(err), flops=flops)
            log(traceback.format_exc())
            continue
        try:
            output = (prepared.check_output or prepared.run)(inputs)
            result = case.check(inputs, expected, output, provider)
            del output
            if not result.passed:
                row(provider, "failed-check", check=result.as_dict(), reason=result.detail, flops=flops)
                continue
            t = time_it(provider, prepared, inputs)
            r = row(provider, "ok", check=result.as_dict(), reason=prepared.note, flops=flops)
            finish(r, t)
            log(_describe(r))
        except Exception as err:  # noqa: BLE001
            row(provider, "error", reason=_short(err), flops=flops)
            log(traceback.format_exc())
        finally:
            del prepared
            _release(device)
    del inputs, expected
    _release(device)
    return rows


def _describe(r: dict) -> str:
    head = f"[{r['suite']}] {r['case']} {r['dtype']} {r['backend']}: {r['status']}"
    if r["status"] == "ok" and r["median_ms"] is not None:
        speed = "" if r["speedup"] is None else f", x{r['speedup']:.2f}"
        return f"{head} {r['median_ms']:.4g} ms{speed}"
    return f"{head} {r['reason']}".rstrip()


def once_per_inputs(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`fn(inputs)` computed once for the inputs object every provider of a case is checked on (an
    expensive oracle, e.g. float64), recomputed when a new case brings new inputs."""
    last: list = [None, None]

    def cached(inputs):
        if last[0] is not inputs:
            last[0], last[1] = None, None  # free the previous case's oracle first
            last[1] = fn(inputs)
            last[0] = inputs
        return last[1]

    return cached


# --------------------------------------------------------------------------------- comparisons

def _flatten(obj: Any) -> list:
    if isinstance(obj, (tuple, list)):
        return [leaf for o in obj for leaf in _flatten(o)]
    if isinstance(obj, dict):
        return [leaf for k in sorted(obj) for leaf in _flatten(obj[k])]
    return [obj]


def _as_array(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().float().cpu().numpy().astype(np.float64)
    return np.asarray(value, dtype=np.float64)


def compare_close(actual: Any, expected: Any, *, tol: float, what: str = "output") -> CheckResult:
    """Every leaf: max |actual - expected| <= tol * max |expected| (errors relative to the leaf's scale)."""
    worst, detail = 0.0, ""
    pairs = list(zip(_flatten(actual), _flatten(expected)))
    if len(_flatten(actual)) != len(_flatten(expected)):
        return CheckResult(False, float("inf"), tol, "relative max error", f"{what}: structure differs")
    for i, (a, e) in enumerate(pairs):
        a, e = _as_array(a), _as_array(e)
        if a.shape != e.shape:
            return CheckResult(False, float("inf"), tol, "relative max error",
                               f"{what}[{i}]: shape {a.shape} != {e.shape}")
        if a.size == 0:
            continue
        if not np.array_equal(np.isnan(a), np.isnan(e)):
            return CheckResult(False, float("inf"), tol, "relative max error", f"{what}[{i}]: NaN pattern differs")
        ok = ~np.isnan(e)
        scale = max(float(np.abs(e[ok]).max(initial=0.0)), 1e-30)
        err = float(np.abs(a[ok] - e[ok]).max(initial=0.0)) / scale
        if err > worst:
            worst, detail = err, f"{what}[{i}]"
    return CheckResult(worst <= tol, worst, tol, "relative max error", f"worst leaf: {detail}" if detail else "")


def compare_low_precision(actual: Any, expected: Any, oracle: Any, *, factor: float = 2.0, floor: float = 1e-6,
                          what: str = "output") -> CheckResult:
    """flash-attention's rule for 16-bit results: per leaf, the error of `actual` against a float32 `oracle`
    is at most `factor` times the error of `expected` (the reference run in the same low precision),
    plus `floor` times the oracle's scale."""
    worst_ratio, detail = 0.0, ""
    for i, (a, e, o) in enumerate(zip(_flatten(actual), _flatten(expected), _flatten(oracle))):
        a, e, o = _as_array(a), _as_array(e), _as_array(o)
        if a.shape != o.shape:
            return CheckResult(False, float("inf"), factor, "error / reference's error",
                               f"{what}[{i}]: shape {a.shape} != {o.shape}")
        if a.size == 0:
            continue
        scale = max(float(np.abs(o).max()), 1e-30)
        err_actual = float(np.abs(a - o).max())
        err_ref = float(np.abs(e - o).max()) + floor * scale
        ratio = err_actual / err_ref
        if not np.isfinite(err_actual):
            ratio = float("inf")
        if ratio > worst_ratio:
            worst_ratio, detail = ratio, f"{what}[{i}]: error {err_actual:.3g}, reference's {err_ref:.3g}"
    return CheckResult(worst_ratio <= factor, worst_ratio, factor, "error / reference's error", detail)


def close_or_low_precision(float32_oracle: Callable[[Any], Any], is_float32: Callable[[Any], bool], *, tol: float,
                           floor: float) -> Callable[[Any, Any, Any, Any], CheckResult]:
    """A case's check for float32 or 16-bit inputs: float32 outputs within `tol` of the reference's
    (`compare_close`); 16-bit ones by `compare_low_precision` against `float32_oracle(inputs)` (the reference
    on the inputs upcast, computed once per inputs) with `floor`."""
    oracle = once_per_inputs(float32_oracle)

    def check(inputs, expected, output, provider):
        if is_float32(inputs):
            return compare_close(output, expected, tol=tol)
        return compare_low_precision(output, expected, oracle(inputs), floor=floor)
    return check


def check_keypoints_on_maps(maps: torch.Tensor, ref_keypoints: Any, ref_scores: Any, keypoints: Any, scores: Any, *,
                            value_tol: float, kp_atol: float, max_tie_fraction: float = 0.1) -> CheckResult:
    """Keypoints decoded from (a computation of) `maps` (N, K, H, W), in heatmap pixels, against the reference's.

    A joint passes when its keypoint is within `kp_atol` px of the reference's, or when the map's value at
    the rounded keypoint is within `value_tol` x (map max - map min) of the map's maximum (a tie or
    near-tie: another computation of the same map may pick another, equally high, pixel). Scores must
    lie within the same tolerance of the map's maximum (0 for maps whose maximum is <= 0). Fails when
    more than `max_tie_fraction` of the joints needed the near-tie rule: then the check says little.
    """
    m = _as_array(maps)
    n, k, height, width = m.shape
    flat = m.reshape(n, k, -1)
    top, bottom = flat.max(axis=2), flat.min(axis=2)
    band = value_tol * np.maximum(top - bottom, 1e-30)
    kp, ref_kp = _as_array(keypoints).reshape(n, k, 2), _as_array(ref_keypoints).reshape(n, k, 2)
    sc = _as_array(scores).reshape(n, k)
    expected_scores = np.where(top > 0, top, 0.0)
    score_err = np.abs(sc - expected_scores) / np.maximum(top - bottom, 1e-30)
    if not np.all(np.isfinite(kp)):
        return CheckResult(False, float("inf"), kp_atol, "px", "non-finite keypoints")
    same = np.abs(kp - ref_kp).max(axis=2) <= kp_atol
    xi = np.clip(np.rint(kp[..., 0]).astype(np.int64), 0, width - 1)
    yi = np.clip(np.rint(kp[..., 1]).astype(np.int64), 0, height - 1)
    value = np.take_along_axis(flat, (yi * width + xi)[..., None], axis=2)[..., 0]
    near_max = value >= top - band
    bad = ~(same | near_max)
    ties = float(np.mean(~same & near_max))
    worst_px = float(np.abs(kp - ref_kp).max())
    detail = (f"{int(bad.sum())} joints off the maximum, {ties:.1%} near-ties, "
              f"max score error {float(score_err.max()):.3g} of the map's range, max |dkp| {worst_px:.3g} px")
    passed = not bad.any() and ties <= max_tie_fraction and float(score_err.max()) <= value_tol
    return CheckResult(passed, worst_px if not bad.any() else float("inf"), kp_atol, "px", detail)
