#!/usr/bin/env bash
# The full-size cut-off study on one GPU machine (configs/cutoff-full-gpu.toml: 25 students,
# 13 at once as local processes sharing the GPU), then the GPU training benchmark
# (benchmarks/gpu.sh) in the time left. Everything it makes goes to OUTDIR: the study's log,
# results.json and report.html, and its run directory packed (its last checkpoints only) in
# parts of 15 MB, so that a machine without a GPU resumes it where it stopped: stage keys
# hash the code and hold paths relative to the run directory, so finished stages are reused.
#
#   bash benchmarks/gpu_study.sh OUTDIR [SECONDS]     # SECONDS: the whole script's budget
#
# Needs python3 with a CUDA build of torch, JAX (run on the CPU here), h5py, matplotlib,
# scipy, typer and rich; pydantic and tomli_w are installed from .whl/ when missing.
set -uo pipefail
cd "$(dirname "$0")/.."
OUTDIR=${1:?usage: bash benchmarks/gpu_study.sh OUTDIR [SECONDS]}
BUDGET=${2:-540}
T0=$(date +%s)
left() { echo $((BUDGET - ($(date +%s) - T0))); }
PY=${PY:-python3}
mkdir -p "$OUTDIR"
if ! "$PY" -c "import pydantic, tomli_w" 2>/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl \
        || { echo "error: no pydantic here and no wheels in .whl/" >&2; exit 1; }
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export OUTLEARN_DEVICE=${OUTLEARN_DEVICE:-cuda} JAX_PLATFORMS=cpu
{ nvidia-smi -L; nproc; "$PY" -c "import torch, jax; print('torch', torch.__version__, 'jax', jax.__version__)"; } \
    2>&1 | tee "$OUTDIR/machine.txt"

RUNS=${RUNS:-/tmp/gpu-runs}
# the study, leaving RESERVE s (100) to pack its run directory and time the benchmark
timeout --signal=INT -k 20 $(( $(left) - ${RESERVE:-100} )) "$PY" -c "
import sys
from pathlib import Path
from outlearn.studies.runner import run_from_toml
print(run_from_toml(Path('${CONFIG:-configs/cutoff-full-gpu.toml}'), Path('$RUNS'), workers=${WORKERS:-13},
                    backend='processes'))" > "$OUTDIR/study.log" 2>&1
echo "study exit $? after $(( $(date +%s) - T0 )) s" | tee -a "$OUTDIR/study.log"
run=$(ls -d "$RUNS"/cutoff-* 2>/dev/null | head -1)
if [ -n "$run" ]; then
    cp "$run/results.json" "$run/report.html" "$OUTDIR/" 2>/dev/null
    # the last checkpoint of each student is all a resume or an evaluation reads
    find "$run" -type d -name checkpoints | while read -r d; do
        ls "$d"/*.pt 2>/dev/null | sort | head -n -1 | xargs -r rm -f
    done
    tar -C "$RUNS" -czf /tmp/run.tgz "$(basename "$run")" && split -b 15M /tmp/run.tgz "$OUTDIR/run.tgz."
    ls -la "$OUTDIR" | tee -a "$OUTDIR/study.log"
fi
if [ "${BENCH:-1}" = 1 ] && [ "$(left)" -gt 50 ]; then
    for d in 256 512; do
        timeout $(( $(left) / 2 )) "$PY" benchmarks/train.py --device cuda --d-model "$d" \
            --batch 64 --context 640 --steps 10 --reps 5
    done > "$OUTDIR/bench.log" 2>&1
fi
echo "done after $(( $(date +%s) - T0 )) s"
