"""The benchmark entry point at tiny sizes on the CPU, so it cannot rot between GPU runs.

One run of every suite (tiny profile) shared by the tests below: the files exist, the JSON has the
structure the report and RESULTS.md rely on, every timed row passed a correctness check first, and
a provider that gives a wrong answer is recorded as failed and never timed. No timing is asserted.
"""
import json

import numpy as np
import pytest
import torch

from srpose_fast.benchmarking import run_benchmarks
from srpose_fast.benchmarking.cases import Case, Provider, check_keypoints_on_maps, compare_close, run_case
from srpose_fast.benchmarking.suites import SUITES, parse_suite

ROW_KEYS = {"suite", "op", "case", "shape", "dtype", "batch", "backend", "status", "reason", "check", "median_ms",
            "items", "items_name", "items_per_s", "speedup", "roofline_fraction", "bytes", "flops", "run"}
ENV_KEYS = {"device", "device_name", "driver", "torch", "triton", "cuda_runtime", "cpu_model", "cpu_count",
            "torch_threads", "python"}


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    lines = []
    results = run_benchmarks(profile="tiny", out=out, device="cpu", log=lines.append)
    return out, results, lines


def test_writes_the_three_files(bench):
    out, results, _ = bench
    assert {p.name for p in out.iterdir()} >= {"results.json", "results.md", "speedup.png"}
    assert json.loads((out / "results.json").read_text()) == json.loads(json.dumps(results, default=str))
    assert (out / "speedup.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = (out / "results.md").read_text()
    for suite in SUITES:
        assert f"## {suite}" in text


def test_json_structure(bench):
    _, results, _ = bench
    assert results["profile"] == "tiny"
    assert ENV_KEYS <= set(results["environment"])
    (run,) = results["runs"]
    assert run["roofline"]["bandwidth_gbps"] > 0 and run["roofline"]["matmul_tflops"]["float32"] > 0
    assert set(results["suites"]) == set(SUITES)
    for name, status in results["suites"].items():
        assert status["status"] == "ok", (name, status)
        assert status["cases"] > 0, name
    for row in results["rows"]:
        assert ROW_KEYS <= set(row), set(row) ^ ROW_KEYS
        assert row["status"] in ("ok", "skipped", "failed-check", "error"), row


def test_every_case_is_checked_before_it_is_timed(bench):
    _, results, _ = bench
    rows = results["rows"]
    assert not [r for r in rows if r["status"] in ("failed-check", "error")], "a provider failed on the CPU"
    for r in rows:
        if r["status"] == "ok":
            assert r["check"]["passed"] is True and r["median_ms"] > 0 and r["items_per_s"] > 0, r
            assert r["speedup"] > 0, r
            if r["backend"] != "reference":
                assert not r["check"].get("oracle") and r["check"]["error"] <= r["check"]["tol"], r
        else:
            assert r["median_ms"] is None, r
    for suite in SUITES:
        timed = {r["backend"] for r in rows if r["suite"] == suite and r["status"] == "ok"}
        assert "reference" in timed, suite
    # Beyond the reference, the CPU times the torch backends and our model paths.
    assert {r["suite"] for r in rows if r["status"] == "ok" and r["backend"] != "reference"} >= {
        "decode", "sr_head_decode", "loss", "train", "infer", "deploy"}


def test_unavailable_backends_are_skipped_with_a_reason(bench):
    _, results, _ = bench
    triton = [r for r in results["rows"] if r["backend"] == "triton"]
    assert triton and all(r["status"] == "skipped" and "CUDA" in r["reason"] for r in triton)
    compiled = [r for r in results["rows"] if r["backend"] == "torch.compile(reference)"]
    assert compiled and all(r["status"] == "skipped" and r["reason"] for r in compiled)


def test_roofline_fraction_is_reported_where_bytes_or_flops_are_known(bench):
    _, results, _ = bench
    for r in results["rows"]:
        if r["status"] == "ok" and (r["bytes"] or r["flops"]):
            assert r["roofline_fraction"] is not None and r["roofline_fraction"] > 0, r


def _tiny_case(provider_fn):
    x = torch.arange(6.0)
    return Case(suite="t", op="op", name="c", shape="(6,)", dtype="float32", batch=1, make_inputs=lambda: x.clone(),
                reference=Provider("reference", lambda: (lambda t: t * 2)),
                providers=[Provider("good", lambda: (lambda t: t + t)), Provider("bad", lambda: provider_fn)],
                check=lambda inputs, expected, output, provider: compare_close(output, expected, tol=1e-6))


def test_a_wrong_provider_fails_its_check_and_is_not_timed():
    calls = []

    def wrong(t):
        calls.append(1)
        return t * 2 + 1

    rows = run_case(_tiny_case(wrong), device=torch.device("cpu"), roofline=None,
                    timing={"min_warmup": 0, "warmup_s": 0, "budget_s": 0, "min_reps": 3, "max_reps": 3},
                    log=lambda s: None)
    by_backend = {r["backend"]: r for r in rows}
    assert by_backend["good"]["status"] == "ok" and by_backend["good"]["reps"] == 3
    assert by_backend["bad"]["status"] == "failed-check"
    assert by_backend["bad"]["check"]["passed"] is False and by_backend["bad"]["median_ms"] is None
    assert len(calls) == 1  # the check's call only


def test_a_raising_provider_is_recorded_as_an_error():
    def broken(t):
        raise RuntimeError("kernel exploded")

    rows = run_case(_tiny_case(broken), device=torch.device("cpu"), roofline=None,
                    timing={"min_warmup": 0, "warmup_s": 0, "budget_s": 0, "min_reps": 1, "max_reps": 1},
                    log=lambda s: None)
    bad = [r for r in rows if r["backend"] == "bad"][0]
    assert bad["status"] == "error" and "kernel exploded" in bad["reason"]


def test_keypoint_check_rejects_a_keypoint_off_the_maximum():
    maps = np.zeros((1, 2, 8, 8), dtype=np.float32)
    maps[0, 0, 3, 4] = 1.0
    maps[0, 1, 5, 2] = 1.0
    ref_kp = np.array([[[4.0, 3.0], [2.0, 5.0]]])
    scores = np.ones((1, 2))
    assert check_keypoints_on_maps(maps, ref_kp, scores, ref_kp, scores, value_tol=1e-3, kp_atol=1e-3).passed
    moved = ref_kp.copy()
    moved[0, 1] = [6.0, 6.0]
    assert not check_keypoints_on_maps(maps, ref_kp, scores, moved, scores, value_tol=1e-3, kp_atol=1e-3).passed
    assert not check_keypoints_on_maps(maps, ref_kp, scores, ref_kp, scores * 0.5, value_tol=1e-3,
                                       kp_atol=1e-3).passed


def test_suite_names_parse():
    assert parse_suite("train:srpose_res50,srpose_hrnet_w32") == ("train", ("srpose_res50", "srpose_hrnet_w32"))
    assert parse_suite("decode") == ("decode", ())
    with pytest.raises(ValueError, match="unknown benchmark suite"):
        parse_suite("nope")
    with pytest.raises(ValueError, match="takes no model names"):
        parse_suite("decode:srpose_res50")


def test_cases_selects_by_suite_and_case_name_and_keeps_the_other_rows(tmp_path):
    from srpose_fast.benchmarking import selected_cases

    ids = [f"{c.suite}/{c.name}" for c in selected_cases(cases=r"decode/shift\+flip|loss/", profile="tiny",
                                                         device="cpu")]
    assert ids == ["decode/shift+flip 64x48 N2", "sr_head_decode/shift+flip N1", "loss/fwd+bwd N1"]
    quiet = [].append
    first = run_benchmarks(profile="tiny", out=tmp_path, device="cpu", suites=["loss", "decode"], cases="loss/",
                           log=quiet)
    assert {r["suite"] for r in first["rows"]} == {"loss"} and set(first["suites"]) == {"loss"}
    # A second selection into the same folder replaces only the rows of the cases it ran.
    second = run_benchmarks(profile="tiny", out=tmp_path, device="cpu", suites=["decode"], cases=r"shift\+flip",
                            log=quiet)
    assert {(r["suite"], r["case"]) for r in second["rows"]} == {("loss", "fwd+bwd N1"),
                                                                 ("decode", "shift+flip 64x48 N2")}
    assert second["runs"][-1]["cases"] == r"shift\+flip"


def test_cases_refuses_a_bad_or_empty_pattern():
    from srpose_fast.benchmarking import selected_cases

    with pytest.raises(ValueError, match="not a regular expression"):
        selected_cases(cases="(", profile="tiny", device="cpu")
    with pytest.raises(ValueError, match="matches none"):
        selected_cases(cases="no such case", profile="tiny", device="cpu")


def test_cli_lists_the_selected_cases_without_running_them(capsys):
    from srpose_fast.cli import main

    assert main(["bench", "--quick", "--list", "--cases", r"^deploy/"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(line.startswith("deploy/") for line in lines)
    assert main(["bench", "--list", "--cases", "no such case"]) == 2
    assert "matches none" in capsys.readouterr().err
