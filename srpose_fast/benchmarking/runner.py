"""`srpose-fast bench`: run the suites, write results.json, results.md and speedup.png under `out`.

Every case checks each provider against the reference on the same inputs before timing it (see
`cases.run_case`). The roofline (copy bandwidth, matmul rates) is measured at the start of each run.
Results accumulate: a run into a folder that already holds results from the same device and profile
replaces the rows of the suites it ran and keeps the others, so the suites can run one command at a
time (benchmarks/run_gpu.sh does). The files are rewritten after every suite.

Profiles: "full" (the GPU sizes), "quick" (`--quick`: small sizes, no torch.compile, a minute or two on
a CPU) and "tiny" (the smoke test).

`cases` (`--cases REGEX`) keeps the cases whose id, "<suite>/<case name>" (e.g. "decode/dark+flip 256x192
N64"), the regular expression matches (`re.search`), so a short run times exactly the headline cases;
`selected_cases` lists them without running anything (`--list`).
"""
from __future__ import annotations

import datetime
import json
import re
import sys
import time
from pathlib import Path
from typing import Callable, Iterable

import torch

from .cases import run_case
from .environment import environment
from .report import markdown, plot_speedups
from .roofline import measure_roofline
from .suites import PROFILES, SUITES, Settings, parse_suite

SCHEMA = 1
# benchmark() keyword arguments per profile; the model suites get a longer budget in the full profile.
TIMING = {
    "full": {"warmup_s": 0.05, "min_warmup": 2, "budget_s": 0.3, "min_reps": 5, "max_reps": 200},
    "quick": {"warmup_s": 0.0, "min_warmup": 1, "budget_s": 0.1, "min_reps": 3, "max_reps": 30},
    "tiny": {"warmup_s": 0.0, "min_warmup": 0, "budget_s": 0.0, "min_reps": 1, "max_reps": 1},
}
# More timing where calls are long or the figure is a target of its own: the model suites in the full
# profile, the host decoder (fast calls, noisy on a shared CPU) in the full and quick profiles.
LONGER = {"budget_s": 1.0, "max_reps": 200}
LONGER_TIMING = {("full", "train"): LONGER, ("full", "infer"): LONGER, ("full", "deploy"): LONGER,
                 ("quick", "deploy"): LONGER}


def _command_line(profile: str, suites: list[str], out: Path) -> str:
    """The command as typed when it was `srpose-fast ...` (or `python -m srpose_fast.cli ...`), else the call."""
    argv = list(sys.argv)
    if argv and (argv[0].endswith("srpose-fast") or argv[0].endswith(("cli.py", "cli/__main__.py"))):
        return " ".join(["srpose-fast"] + argv[1:])
    return f"run_benchmarks(profile={profile!r}, out={str(out)!r}, suites={suites!r})"


def _previous(path: Path, env: dict, profile: str, log: Callable[[str], None]) -> dict | None:
    if not path.exists():
        return None
    try:
        old = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        log(f"bench: ignoring unreadable {path} ({err})")
        return None
    if (old.get("schema") != SCHEMA or old.get("profile") != profile
            or old.get("environment", {}).get("device_name") != env["device_name"]):
        log(f"bench: {path} holds results of another device or profile; starting afresh")
        return None
    return old


def _replaced(row: dict, suite: str, models: tuple[str, ...]) -> bool:
    return row["suite"] == suite and (not models or row.get("model") in models)


def case_id(case) -> str:
    """What `--cases` matches: "<suite>/<case name>"."""
    return f"{case.suite}/{case.name}"


def _case_filter(cases: str | None) -> Callable[[object], bool]:
    if cases is None:
        return lambda case: True
    try:
        pattern = re.compile(cases)
    except re.error as err:
        raise ValueError(f"--cases: {cases!r} is not a regular expression ({err})") from None
    return lambda case: pattern.search(case_id(case)) is not None


def _selected_suites(suites: Iterable[str] | None) -> list[tuple[str, tuple[str, ...]]]:
    return [parse_suite(s) for s in (suites or list(SUITES))]


def selected_cases(suites: Iterable[str] | None = None, cases: str | None = None, *, profile: str = "full",
                   device: str | torch.device | None = None) -> list:
    """The cases a run with these arguments would time, in order (their inputs are not made); a ValueError
    when `cases` matches none of them."""
    device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    keep = _case_filter(cases)
    chosen = [case for name, models in _selected_suites(suites)
              for case in SUITES[name](Settings(device=device, profile=profile, models=models)) if keep(case)]
    if cases is not None and not chosen:
        raise ValueError(f"--cases {cases!r} matches none of the {profile} profile's cases of the suites asked for "
                         f"(srpose-fast bench --list shows them)")
    return chosen


def write_results(results: dict, out: Path, *, plot: bool = True, log: Callable[[str], None] = print) -> None:
    """results.json (atomically), results.md and, with `plot`, speedup.png."""
    tmp = out / "results.json.tmp"
    tmp.write_text(json.dumps(results, indent=1, default=str))
    tmp.replace(out / "results.json")
    (out / "results.md").write_text(markdown(results))
    if plot:
        try:
            plot_speedups(results, out / "speedup.png")
        except ImportError as err:
            log(f"bench: no speedup.png: matplotlib is not importable ({err})")


def run_benchmarks(quick: bool = False, out: str | Path = "outputs/bench", suites: Iterable[str] | None = None, *,
                   cases: str | None = None, profile: str | None = None, device: str | torch.device | None = None,
                   log: Callable[[str], None] = print) -> dict:
    """Run the named suites (all when None) and write the results; returns the results dict.

    cases: a regular expression; only the cases whose "<suite>/<case name>" it matches run.
    profile: "full" | "quick" | "tiny"; default "quick" when `quick` else "full".
    device: default "cuda" when available, else "cpu".
    """
    profile = profile or ("quick" if quick else "full")
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    selected = _selected_suites(suites)
    keep = _case_filter(cases)
    if cases is not None:
        selected_cases(suites, cases, profile=profile, device=device)  # refuses a pattern that matches nothing
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    env = environment(device)
    results = _previous(out / "results.json", env, profile, log) or {
        "schema": SCHEMA, "profile": profile, "environment": env, "runs": [], "suites": {}, "rows": []}
    results["environment"] = env
    started = time.perf_counter()
    log(f"bench: {profile} profile on {env['device_name']} ({device}); suites: "
        f"{', '.join(name + (':' + ','.join(m) if m else '') for name, m in selected)}")
    roofline = measure_roofline(device, profile)
    log(f"bench: roofline: copy {roofline.bandwidth_gbps:.4g} GB/s, matmul "
        + ", ".join(f"{k} {v:.3g} TFLOP/s" for k, v in roofline.matmul_tflops.items()))
    suite_keys = [n + (":" + ",".join(m) if m else "") for n, m in selected]
    run = {"command": _command_line(profile, suite_keys, out),
           "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
           "profile": profile, "suites": suite_keys, "cases": cases, "roofline": roofline.as_dict(), "seconds": 0.0}
    results["runs"].append(run)
    run_index = len(results["runs"]) - 1

    for name, models in selected:
        suite_start = time.perf_counter()
        settings = Settings(device=device, profile=profile, models=models)
        timing = {**TIMING[profile], **LONGER_TIMING.get((profile, name), {})}
        key = name + (":" + ",".join(models) if models else "")
        status = {"run": run_index, "status": "running", "error": "", "cases": 0, "seconds": 0.0}
        try:
            suite_cases = [case for case in SUITES[name](settings) if keep(case)]
        except Exception as err:  # noqa: BLE001 - one broken suite must not lose the others' results
            suite_cases = []
            status.update(status="error", error=f"{type(err).__name__}: {err}")
        if not suite_cases and status["status"] == "running":
            continue  # --cases selected none of this suite's cases: nothing to record
        results["suites"][key] = status
        # This suite's old rows (of the selected cases) go now; the new ones are written after every
        # case, so a run stopped midway (a time limit) keeps what it measured.
        chosen = {case.name for case in suite_cases}
        results["rows"] = [r for r in results["rows"]
                           if not (_replaced(r, name, models) and (cases is None or r["case"] in chosen))]
        write_results(results, out, plot=False, log=log)
        try:
            for case in suite_cases:
                for row in run_case(case, device=device, roofline=roofline, timing=timing, log=log):
                    row.update(case.extra)
                    row["run"] = run_index
                    results["rows"].append(row)
                status["cases"] += 1
                status["seconds"] = time.perf_counter() - suite_start
                run["seconds"] = time.perf_counter() - started
                write_results(results, out, plot=False, log=log)
            if status["status"] == "running":
                status["status"] = "ok"
        except Exception as err:  # noqa: BLE001 - one broken suite must not lose the others' results
            status.update(status="error", error=f"{type(err).__name__}: {err}")
        if status["error"]:
            log(f"bench: suite {name} failed: {status['error']}")
        status["seconds"] = time.perf_counter() - suite_start
        run["seconds"] = time.perf_counter() - started
        write_results(results, out, log=log)
        log(f"bench: suite {key}: {status['cases']} cases in {status['seconds']:.1f} s")

    failed = [r for r in results["rows"] if r["run"] == run_index and r["status"] in ("failed-check", "error")]
    log(f"bench: wrote {out / 'results.json'}, results.md, speedup.png in {time.perf_counter() - started:.0f} s")
    if failed:
        log(f"bench: {len(failed)} rows FAILED their correctness check or raised: see the 'status' column")
    return results
