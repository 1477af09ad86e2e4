#!/usr/bin/env bash
# One-shot check of the CUDA path, for a machine with an NVIDIA GPU (none was available where this
# was written): the GPU tests, then one short VIP5 run on the embedded synthetic dataset whose
# records go to results/gpu/ (and, with two or more GPUs, the same run under torchrun to
# results/gpu/ddp/). Run from anywhere:  tests/gpu/check_cuda.sh   (PYTHON=... to pick the interpreter)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python}

"$PY" -c "import torch; assert torch.cuda.is_available(), 'torch sees no CUDA device'; \
print(torch.__version__, torch.cuda.get_device_name(0), 'x', torch.cuda.device_count(), \
'| autocast dtype:', 'bf16' if torch.cuda.is_bf16_supported() else 'fp16 (with GradScaler)')"

echo "== GPU tests"
"$PY" -m pytest tests/gpu -m gpu -q -rs -p no:cacheprovider

# random-init backbone: no P5 pre-training run first, so this stays a few minutes
RUN=(-m bench run --task sequential --dataset synthetic --models vip5 --epochs 2 --seeds 2022
     --set backbone_init=random --tag cuda-check)
echo "== VIP5 on cuda (records: results/gpu/)"
"$PY" "${RUN[@]}" --device cuda --results-dir results/gpu
NGPU=$("$PY" -c "import torch; print(torch.cuda.device_count())")
if [ "$NGPU" -ge 2 ]; then
    echo "== the same under torchrun, $NGPU processes (records: results/gpu/ddp/)"
    "$PY" -m torch.distributed.run --standalone --nproc_per_node "$NGPU" "${RUN[@]}" --device cuda --results-dir results/gpu/ddp
fi

"$PY" - <<'PYEOF'
import json
from pathlib import Path

for p in sorted(Path("results/gpu").rglob("runs/**/*.json")):
    r = json.loads(p.read_text())
    print(f"{p}: {r['device']} x{r.get('world_size', 1)}  {r['memory_kind']} {r['peak_memory_mb']:.0f} MiB/process  "
          f"{r['time_per_epoch_s']:.2f} s/epoch  ndcg@10 {r['metrics']['ndcg@10']:.4f}")
PYEOF
