#!/usr/bin/env bash
# AD training on a GPU against the CPU beside it: tokens/s, TFLOP/s and MFU (against the
# same run's bf16 matmul peak) at d_model 256 and 512, bf16 autocast + torch's scaled-dot-
# product attention, context 640. Runs in about 3-5 minutes; tests never need a GPU.
#
#   bash benchmarks/gpu.sh            # on a machine whose python3 has a CUDA build of torch
#
# outlearn needs pydantic beside torch; where python3 lacks it and nothing can be fetched,
# put its wheels in .whl/ (pydantic, pydantic-core, annotated-types, typing-inspection) and
# they are installed into /tmp/site first.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
if ! "$PY" -c "import pydantic" 2>/dev/null; then
    if compgen -G ".whl/*.whl" >/dev/null; then
        "$PY" -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
        export PYTHONPATH=/tmp/site
    else
        echo "error: $PY has no pydantic: pip install pydantic, or put its wheels in .whl/" >&2
        exit 1
    fi
fi
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
"$PY" -c "
import sys
try:
    import torch
except ImportError:
    sys.exit('error: $PY has no torch: run this where a CUDA build of torch is installed')
if not torch.cuda.is_available():
    sys.exit(f'error: torch {torch.__version__} sees no CUDA GPU here')
print('torch', torch.__version__, torch.cuda.get_device_name(0))"
for d in 256 512; do
    timeout 150 "$PY" benchmarks/train.py --device cuda --d-model "$d" --batch 64 \
        --context 640 --steps 10 --reps 5
done
