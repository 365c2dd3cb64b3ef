#!/usr/bin/env bash
# The benchmark's full (GPU) mode for both tasks on one GPU machine, in a few time-boxed, resumable commands.
#
# Two steps, from the repository root (a third, `perf`, times the step and its fast paths on the GPU instead):
#
#   bash benchmarks/gpu_full.sh prepare     # HERE (network): wheels of our non-torch dependencies + the data into
#                                           # .gpu_full/ (git-ignored, ~50 MB), for a GPU machine with no network
#   bash benchmarks/gpu_full.sh run         # THERE, once or more: installs from .gpu_full/ (no download, the
#                                           # machine's own CUDA torch is kept), then runs both tasks side by side
#                                           # until BUDGET seconds have passed, stops cleanly and prints the reports
#
# `run` is resumable: each call skips finished runs and resumes interrupted ones from their checkpoints (every
# bundle run resumes by itself), so two calls of <= 9 minutes continue one benchmark. Several bundle processes share
# the GPU (JOBS per task); both bundles use AMP on CUDA. Outputs go to RUN_DIR (default results/gpu_full); when a task
# is complete its results.md is printed and, with RESULTS_TO set (e.g. $OUT of the device tool), copied there with
# results.json and the plots.
#
# Settings (environment): BUDGET (seconds per call, default 510), JOBS (bundle processes per task, default 6),
# RUN_DIR (not OUT: the device tool sets OUT to a folder it empties before every call, which would lose the
# progress a later call resumes from), DATA (folder holding jsrt_scr/, msd_hippocampus/, nih_cxr14_samples/; default .gpu_full/data, else
# ../shared/data), TASKS (built-in names or task files; default "jsrt_scr msd_hippocampus"), MODE (default full).
# Exit status: 0 all tasks complete, 3 some task not finished yet (call again), 1 an error.
set -uo pipefail
cd "$(dirname "$0")/.."
STEP=${1:-run}
STAGE=.gpu_full
BUDGET=${BUDGET:-510}
JOBS=${JOBS:-6}
RUN_DIR=${RUN_DIR:-results/gpu_full}
MODE=${MODE:-full}
TASKS=${TASKS:-"jsrt_scr msd_hippocampus"}
PY=${PYTHON:-python3}

if [ "$STEP" = prepare ]; then
    set -e
    mkdir -p "$STAGE/wheels" "$STAGE/data"
    grep -qx "/$STAGE/" .git/info/exclude 2>/dev/null || echo "/$STAGE/" >> .git/info/exclude
    # what the GPU machine's image lacks (it has torch, numpy, scipy, matplotlib, pillow, tensorboard, safetensors,
    # tqdm, attrs): pinned to this environment's versions, no dependencies, so nothing there is replaced
    pkgs=$("$PY" -m pip freeze | grep -iE '^(monai|pytorch-ignite|nibabel|fire|termcolor|jsonschema|jsonschema-specifications|referencing|rpds-py)==' | tr '\n' ' ')
    # shellcheck disable=SC2086
    "$PY" -m pip download -q --no-deps -d "$STAGE/wheels" --only-binary=:all: --python-version 3.12 \
        --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform any $pkgs
    for d in jsrt_scr msd_hippocampus nih_cxr14_samples; do
        [ -d "../shared/data/$d" ] && cp -r "../shared/data/$d" "$STAGE/data/"
    done
    du -sh "$STAGE"
    echo "prepared $STAGE; on the GPU machine run: bash benchmarks/gpu_full.sh run   (carry $STAGE)"
    exit 0
fi
[ "$STEP" = run ] || [ "$STEP" = perf ] || { echo "usage: bash benchmarks/gpu_full.sh prepare|run|perf" >&2; exit 2; }

if [ -z "${DATA:-}" ]; then
    DATA=$STAGE/data
    [ -d "$DATA/jsrt_scr" ] || DATA=../shared/data
fi
# monai_cover itself is this checkout (run from the repo root); only its dependencies are installed
if ! "$PY" -c "import monai, ignite, nibabel, fire, jsonschema" 2>/dev/null; then
    [ -d "$STAGE/wheels" ] || { echo "$STAGE/wheels: missing; run 'bash benchmarks/gpu_full.sh prepare' first" >&2
                                exit 1; }
    "$PY" -m pip install -q --no-index --no-deps "$STAGE"/wheels/*.whl || exit 1
fi
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"

if [ "$STEP" = perf ]; then
    # issue 14's GPU tables in one call of at most ~8.5 min on an H200 (all rows of a part in one process: a fresh
    # one takes ~20 s to start there; each part time-boxed, so a slow compile
    # cannot eat the lease; each measured row is also printed as it finishes, so a part cut short still reports):
    # local correlation (loop / PyTorch op / Triton kernel), then the step with the fast paths, fp32 (+ bf16
    # autocast) and fp16 AMP, 2D 8x1x256² and 3D 2x1x96³, authors' widths; compile last in each part
    out=${RESULTS_TO:-$RUN_DIR/perf}
    mkdir -p "$out"
    export PYTHONPATH=. PYTHONUNBUFFERED=1
    step=(benchmarks/step.py --device cuda --same_process --batch2d 8 --size2d 256 --batch3d 2 --size3d 96 --iters 10 --warmup 3)
    timeout -k 5 90 "$PY" benchmarks/local_correlation.py --device cuda --repeats 10 2>&1 | tee "$out/local_correlation.md"
    timeout -k 5 240 "$PY" "${step[@]}" --amp none --options checkpointing separate_views channels_last bf16 compile \
        --json "$out/step_none.json" 2>&1 | tee "$out/step_none.md"
    timeout -k 5 180 "$PY" "${step[@]}" --amp fp16 --options checkpointing channels_last compile \
        --json "$out/step_fp16.json" 2>&1 | tee "$out/step_fp16.md"
    exit 0
fi

pids=()
for t in $TASKS; do
    name=$(basename "$t" .json)
    mkdir -p "$RUN_DIR/$name"
    case $t in  # the built-in tasks read DATA; a task file keeps its own paths
        jsrt_scr) args=(--data "$DATA/jsrt_scr" --set "unlabeled=[\"$DATA/nih_cxr14_samples\"]");;
        msd_hippocampus) args=(--data "$DATA/msd_hippocampus");;
        *) args=();;
    esac
    # at the budget every process of the task gets SIGTERM; each bundle run resumes from its newest checkpoint
    OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} PYTHONUNBUFFERED=1 timeout --signal=TERM --kill-after=30 "$BUDGET" \
        "$PY" -m monai_cover.label_efficiency --task "$t" --mode "$MODE" --jobs "$JOBS" --out "$RUN_DIR/$name" "${args[@]}" \
        > "$RUN_DIR/$name/gpu_full.log" 2>&1 &
    pids+=($!)
done
status=0
for p in "${pids[@]}"; do
    wait "$p"
    rc=$?
    [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ] || status=1  # 124: stopped at the budget, resumes next call
done
for t in $TASKS; do
    name=$(basename "$t" .json)
    echo "== $name: $(grep -c '^\[' "$RUN_DIR/$name/gpu_full.log") runs finished in this call; last lines:"
    tail -n 3 "$RUN_DIR/$name/gpu_full.log"
    if [ -f "$RUN_DIR/$name/results.md" ]; then
        cat "$RUN_DIR/$name/results.md"
        if [ -n "${RESULTS_TO:-}" ]; then  # 3 files per task (the device tool returns at most 8)
            mkdir -p "$RESULTS_TO/$name" && cp "$RUN_DIR/$name"/results.md "$RUN_DIR/$name"/results.json "$RESULTS_TO/$name/" &&
                tar -cf "$RESULTS_TO/$name/plots.tar" -C "$RUN_DIR/$name" $(cd "$RUN_DIR/$name" && ls ./*.png)
        fi
    else
        echo "$name: not finished; call 'bash benchmarks/gpu_full.sh run' again to continue"
        [ "$status" -ne 0 ] || status=3
    fi
done
exit $status
