#!/usr/bin/env bash
# The whole GPU check as ONE command of at most 9 minutes on the H200.
#
# Planned for a 15-minute device session: the machine's start takes 1-2 minutes and this command at
# most 9 (the step limits below add up to 525 s), which leaves room to rerun one step after a fix.
#
#   here, once:   bash benchmarks/run_gpu.sh --fetch-wheels   # the packages the H200 image lacks, into .whl/
#   here:         bash benchmarks/run_gpu.sh --dry-run        # the plan with each step's limit; the CPU parts
#   device tool:  run(command="bash benchmarks/run_gpu.sh", carry=[".whl"], timeout_s=570)
#
# Steps (each under `timeout`; a step that fails or runs out of time is reported and the next one runs):
#   build   90 s   the CUDA extension for sm_90 only (TORCH_CUDA_ARCH_LIST=9.0), then `import srpose_fast._C`:
#                  setup.py builds it as optional, so a failed build would otherwise look like a good install
#   tests  225 s   every test of tests/ops and tests/cuda (the Triton and CUDA kernels against the references,
#                  under sync-debug mode and CUDA graphs where the tests ask), pytest-xdist over the 16 cores,
#                  90 s per test at most
#   bench  210 s   the headline cases only (`srpose-fast bench --cases`), in three steps so that a slow compile
#                  cannot starve the rest: the decoders and the loss (50 s); the SR head forward+backward at
#                  stage 3 (70 s, with torch.compile max-autotune); srpose_hrnet_w32 inference with the flip
#                  test and a training step (90 s, with the compiled reference)
#
# Files under $OUT (six, of the device tool's eight): env.txt, run_gpu.log (everything printed), tests.xml
# (pytest's junit report), bench/results.json, bench/results.md, bench/speedup.png.
set -uo pipefail
cd "$(dirname "$0")/.."

OUT="${OUT:-outputs/gpu_run}"
PYTHON="${PYTHON:-python3}"
WHEELS=.whl
# The issue's headline cases, as "<suite>/<case name>" regular expressions (srpose-fast bench --list).
KERNEL_CASES='^(decode/dark\+flip 256x192 N64|sr_head_decode/dark\+flip N64|loss/fwd\+bwd N32)$'
SR_HEAD_CASES='^sr_head/fwd\+bwd stage3 k9 r4 N(32|64)$'
MODEL_CASES='^(infer|train)/srpose_hrnet_w32 N32$'
# name:limit_s, in order
PLAN=(build:90 tests:225 bench-kernels:50 bench-sr-head:70 bench-models:90)

limit_of() { local entry; for entry in "${PLAN[@]}"; do [ "${entry%%:*}" = "$1" ] && echo "${entry##*:}"; done; }

fetch_wheels() {  # here (any machine with PyPI): wheels for the H200's Python 3.12 that its image lacks
    mkdir -p "$WHEELS"
    grep -qx "/$WHEELS/" .git/info/exclude 2>/dev/null || echo "/$WHEELS/" >> .git/info/exclude
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d "$WHEELS" "pycocotools==2.0.11"
}

dry_run() {
    local total=0 entry
    echo "run_gpu.sh plan (limits in seconds):"
    for entry in "${PLAN[@]}"; do
        printf '  %-14s %4s\n' "${entry%%:*}" "${entry##*:}"
        total=$((total + ${entry##*:}))
    done
    printf '  %-14s %4s  (%s min %s s; the device tool allows 600 s a command)\n' total "$total" \
        $((total / 60)) $((total % 60))
    [ "$total" -le 540 ] || { echo "the plan exceeds 9 minutes"; return 1; }
    ls "$WHEELS"/*.whl >/dev/null 2>&1 && echo "wheels to carry: $(ls "$WHEELS")" \
        || echo "no $WHEELS/: run --fetch-wheels first (pycocotools is missing on the H200)"
    echo "what the CPU can check: the headline cases exist, the GPU tests collect"
    local rc=0
    for cases in "$KERNEL_CASES" "$SR_HEAD_CASES" "$MODEL_CASES"; do
        "$PYTHON" -m srpose_fast.cli bench --list --cases "$cases" || rc=1
    done
    "$PYTHON" -m pytest --collect-only -q tests/ops tests/cuda | tail -n 1 || rc=1
    return $rc
}

build() {  # the build step (run as `run_gpu.sh --build` so that it can run under `timeout`)
    if ls "$WHEELS"/*.whl >/dev/null 2>&1; then
        "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
            "$WHEELS"/*.whl || return 1
    fi
    TORCH_CUDA_ARCH_LIST=9.0 "$PYTHON" -m pip install -q -e . --no-build-isolation --no-deps \
        || TORCH_CUDA_ARCH_LIST=9.0 "$PYTHON" -m pip install -q -e . --no-build-isolation --no-deps \
            --break-system-packages || return 1
    "$PYTHON" -c "import torch, srpose_fast._C; print('srpose_fast._C imports; torch', torch.__version__)"
}

case "${1:-}" in
    --fetch-wheels) fetch_wheels; exit $? ;;
    --dry-run) dry_run; exit $? ;;
    --build) build; exit $? ;;
    "") ;;
    *) echo "usage: bash benchmarks/run_gpu.sh [--dry-run | --fetch-wheels]"; exit 2 ;;
esac

mkdir -p "$OUT/bench"
LOG="$OUT/run_gpu.log"
export PYTHONUNBUFFERED=1
failed=()

step() {  # step NAME COMMAND...: runs under the plan's limit for NAME
    local name=$1 limit rc
    limit=$(limit_of "$name")
    shift
    echo "=== $name ($(date -u +%H:%M:%S) UTC, limit ${limit}s): $*" | tee -a "$LOG"
    timeout --signal=INT --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$LOG"
    rc=${PIPESTATUS[0]}
    echo "=== $name: exit $rc$([ "$rc" -eq 124 ] && echo ' (time limit)')" | tee -a "$LOG"
    [ "$rc" -eq 0 ] || failed+=("$name")
    return "$rc"
}

environment() {
    {
        date -u
        nvidia-smi || echo "nvidia-smi: not found"
        "$PYTHON" - <<'EOF'
import importlib.metadata as md
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(),
      "gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
for name in ("triton", "numpy", "pytest", "pytest-xdist", "pytest-timeout", "hypothesis", "pycocotools", "scipy"):
    try:
        print(name, md.version(name))
    except md.PackageNotFoundError:
        print(name, "MISSING")
EOF
        git log -1 --oneline 2>/dev/null
        git status --short 2>/dev/null | head -50
    } > "$OUT/env.txt" 2>&1
}

export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}  # where build puts the carried wheels
environment
if step build bash "$0" --build; then
    step tests "$PYTHON" -m pytest -q -rs -n 16 --timeout 90 --junitxml "$OUT/tests.xml" tests/ops tests/cuda
    step bench-kernels "$PYTHON" -m srpose_fast.cli bench --out "$OUT/bench" --cases "$KERNEL_CASES" \
        --suite decode --suite sr_head_decode --suite loss
    step bench-sr-head "$PYTHON" -m srpose_fast.cli bench --out "$OUT/bench" --cases "$SR_HEAD_CASES" --suite sr_head
    step bench-models "$PYTHON" -m srpose_fast.cli bench --out "$OUT/bench" --cases "$MODEL_CASES" \
        --suite infer:srpose_hrnet_w32 --suite train:srpose_hrnet_w32
else
    echo "=== the build failed: nothing else can run (see above)" | tee -a "$LOG"
fi
echo "=== done at $(date -u +%H:%M:%S) UTC; failed or cut short: ${failed[*]:-none}" | tee -a "$LOG"
[ ${#failed[@]} -eq 0 ]
