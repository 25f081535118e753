"""results.json -> results.md (tables per suite) and speedup.png (speed-up per op and batch size)."""
from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

TIMED = ("ok",)
SHOWN = ("ok", "checked", "failed-check", "error")


def _num(value, digits: int = 4) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "0"
    return f"{value:.{digits}g}"


def _check_text(check) -> str:
    if not check:
        return "-"
    if check.get("oracle"):
        return "oracle"
    mark = "pass" if check["passed"] else "FAIL"
    return f"{mark} {check['error']:.2g} / {check['tol']:.2g}"


def _row_line(r: dict) -> str:
    speed = "-" if r.get("speedup") is None else f"x{r['speedup']:.2f}"
    roof = "-" if r.get("roofline_fraction") is None else f"{100 * r['roofline_fraction']:.1f}%"
    status = "" if r["status"] == "ok" else f"{r['status']}: {r.get('reason', '')}"
    per_s = _num(r.get("items_per_s"))
    return (f"| {r['case']} | {r['shape']} | {r['dtype']} | {r['backend']} | {_num(r.get('median_ms'))} | "
            f"{per_s} {r['items_name'] if r.get('items_per_s') else ''} | {speed} | {roof} | "
            f"{_check_text(r.get('check'))} | {status.replace('|', '/')} |")


def markdown(results: dict) -> str:
    env = results["environment"]
    lines = ["# srpose-fast benchmark results", ""]
    device = env["device_name"] if env["device"] != "cpu" else f"CPU: {env['cpu_model']}"
    lines.append(f"- device: {device} ({env['device']}); driver {env.get('driver') or '-'}; "
                 f"CUDA runtime {env.get('cuda_runtime') or '-'}; cuDNN {env.get('cudnn') or '-'}")
    lines.append(f"- torch {env['torch']}, triton {env.get('triton') or '-'}, numpy {env['numpy']}, "
                 f"Python {env['python']}; {env['platform']}")
    lines.append(f"- CPU: {env['cpu_model']}, {env['cpu_count']} logical CPUs ({env.get('cpu_affinity')} usable), "
                 f"torch threads {env['torch_threads']}, load average at start {env.get('loadavg_at_start')}")
    for i, run in enumerate(results["runs"]):
        roof = run.get("roofline") or {}
        rates = ", ".join(f"{k} {v:.3g} TFLOP/s" for k, v in roof.get("matmul_tflops", {}).items())
        lines.append(f"- run {i}: `{run['command']}` ({run['profile']} profile, {run['started']}, "
                     f"{run.get('seconds', 0):.0f} s; suites {', '.join(run['suites'])}); measured roofline: copy "
                     f"{roof.get('bandwidth_gbps', 0):.4g} GB/s, matmul {rates}")
    for key, status in results.get("suites", {}).items():
        state = {"running": "cut short (stopped before it finished)"}.get(status["status"], status["status"])
        error = f": {status['error']}" if status.get("error") else ""
        lines.append(f"- suite {key}: {state}{error}; {status.get('cases', 0)} cases in "
                     f"{status.get('seconds', 0):.0f} s (run {status.get('run')})")
    lines += ["", "Speed-up: the reference's median time over the row's (same case). Roofline: the time the measured "
              "copy bandwidth and matmul rate allow for the case's bytes and FLOPs, over the median. "
              "Check: the error against the reference and its tolerance (passed before timing).", ""]
    by_suite: dict[str, list[dict]] = defaultdict(list)
    for r in results["rows"]:
        by_suite[r["suite"]].append(r)
    for suite, rows in by_suite.items():
        lines += [f"## {suite}", "",
                  "| case | shape | dtype | backend | median ms | items/s | speed-up | roofline | check | note |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        lines += [_row_line(r) for r in rows if r["status"] in SHOWN]
        skipped: dict[tuple[str, str], int] = defaultdict(int)
        for r in rows:
            if r["status"] == "skipped":
                skipped[(r["backend"], r["reason"])] += 1
        if skipped:
            lines += ["", "Not run here:"]
            lines += [f"- {backend}: {reason} ({count} cases)" for (backend, reason), count in skipped.items()]
        lines.append("")
    return "\n".join(lines)


def _geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def plot_speedups(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, dict[tuple[str, str, str], dict[int, list[float]]]] = defaultdict(lambda: defaultdict(
        lambda: defaultdict(list)))
    for r in results["rows"]:
        if r["status"] in TIMED and r.get("speedup") and not (r.get("check") or {}).get("oracle"):
            series[r["suite"]][(r["op"], r["backend"], r["dtype"])][r["batch"]].append(r["speedup"])
    suites = list(series)
    if not suites:
        fig, ax = plt.subplots(figsize=(6, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, "no speed-ups measured in this run", ha="center", va="center")
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return
    cols = min(3, len(suites))
    rows = math.ceil(len(suites) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.5 * cols, 4.2 * rows), squeeze=False)
    for ax, suite in zip(axes.flat, suites):
        for (op, backend, dtype), points in sorted(series[suite].items()):
            batches = sorted(points)
            ax.plot(batches, [_geomean(points[b]) for b in batches], marker="o", label=f"{op} {backend} {dtype}")
        ax.axhline(1.0, color="grey", lw=0.8, ls="--")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_title(suite)
        ax.set_xlabel("batch size")
        ax.set_ylabel("speed-up vs reference (geomean over shapes)")
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(suites):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
