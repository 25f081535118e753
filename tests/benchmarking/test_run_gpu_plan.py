"""benchmarks/run_gpu.sh, read as text: its plan fits the 9-minute command, and its headline case patterns
still select the cases they name (a renamed case would otherwise be skipped silently on the GPU)."""
import re
from pathlib import Path

from srpose_fast.benchmarking import selected_cases

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "run_gpu.sh"


def _script() -> str:
    return SCRIPT.read_text()


def test_the_plan_fits_nine_minutes_and_every_step_has_a_limit():
    plan = dict(entry.split(":") for entry in re.search(r"^PLAN=\((.*)\)$", _script(), re.M).group(1).split())
    assert sum(int(limit) for limit in plan.values()) <= 9 * 60
    steps = set(re.findall(r"^\s*(?:if )?step ([\w-]+) ", _script(), re.M))
    assert steps == set(plan), (steps, set(plan))


def test_the_headline_patterns_select_the_headline_cases():
    patterns = dict(re.findall(r"^(\w+_CASES)='(.*)'$", _script(), re.M))
    ids = {name: {f"{c.suite}/{c.name} {c.dtype}" for c in selected_cases(cases=pattern, device="cpu")}
           for name, pattern in patterns.items()}
    assert ids["SR_HEAD_CASES"] == {f"sr_head/fwd+bwd stage3 k9 r4 N{n} {d}" for n in (32, 64)
                                    for d in ("float32", "bfloat16")}
    assert {"decode/dark+flip 256x192 N64 float32", "sr_head_decode/dark+flip N64 float32",
            "loss/fwd+bwd N32 float32"} <= ids["KERNEL_CASES"]
    assert ids["MODEL_CASES"] == {"infer/srpose_hrnet_w32 N32 float32", "train/srpose_hrnet_w32 N32 float32"}
