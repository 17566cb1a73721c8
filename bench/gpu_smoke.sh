#!/usr/bin/env bash
# GPU smoke check: does `haystack-rl train` (SFT warm start + GRPO through TRL) run on CUDA, and how fast?
#
# Checks: nvidia-smi / python / torch versions and torch.cuda.is_available(); that haystack-ai, trl,
# datasets, openai, transformers import; then the `make demo` training (pipelines/train_reverse_text.yml,
# sft.steps=120, grpo.steps=6, eval.num_examples=30) run in-process so the peak CUDA memory can be printed,
# and, if time is left, the config's full defaults (capped at 180 s). GPU use is sampled once a second.
# bench/generation_batching.py is not run: it has no device option (its generator stays on the CPU).
#
# Meant for the lent device machine (nvidia-h200), which lacks haystack-ai, trl, datasets, openai and some of
# their dependencies: they travel as wheels in the git-ignored .whl/ (see /work/.library/device/README.md),
# downloaded for cp312 manylinux x86_64 with `pip download --no-deps` at the versions of .venv here.
# Through the device tool:  run(command="bash bench/gpu_smoke.sh", carry=[".whl"], timeout_s=420)
# Outputs in $OUT: log, gpu.csv, demo_summary.json, demo_metrics.jsonl, demo_learning_curve.png,
# full_summary.json, full_metrics.jsonl (at most 8 files, flat names).
set -x
OUT=${OUT:-/tmp/gpu_smoke_out}
mkdir -p "$OUT"
exec > >(tee "$OUT/log") 2>&1
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 COLUMNS=140
export HAYSTACK_RL_CACHE=/tmp/hrl_cache TOKENIZERS_PARALLELISM=false
T0=$(date +%s)

# 1. The machine.
nvidia-smi
python3 -c 'import sys, torch; print(sys.version); print("torch", torch.__version__, "cuda", torch.version.cuda,
  "available", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-")'

# Install the carried wheels; haystack_rl from the repo root, haystack_rl_envs (envs/, see setup.py) via a link.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  || exit 1
mkdir -p /tmp/pp && ln -sfn "$PWD/envs" /tmp/pp/haystack_rl_envs
export PYTHONPATH=/tmp/site:/tmp/pp:$PWD
python3 -c 'import haystack, trl, datasets, openai, transformers, peft, accelerate, torch, haystack_rl_envs
from importlib.metadata import version as v
print({n: v(n) for n in ["haystack-ai", "trl", "datasets", "openai", "transformers", "huggingface_hub", "peft",
                         "accelerate", "torch", "tokenizers", "pyarrow", "numpy"]})
from haystack_rl.registry import available_environments; print(available_environments())' || exit 1

nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 1 > "$OUT/gpu.csv" &
SMI=$!

# 2. Training, in-process (`python3 -m haystack_rl.cli train ...` is the same command) so CUDA memory can be read.
train() {  # train LABEL [--set ...]
  local label=$1; shift
  python3 - pipelines/train_reverse_text.yml --set output_dir=/tmp/runs/$label "$@" <<'EOF'
import sys, time, torch
from haystack_rl.cli import app
start = time.perf_counter()
code = 0
try:
    app(args=["train", *sys.argv[1:]])
except SystemExit as error:
    code = error.code or 0
print(f"SMOKE exit={code} wall_s={time.perf_counter() - start:.1f} cuda_initialized={torch.cuda.is_initialized()} "
      f"cuda_max_memory_allocated_MiB={torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else 0:.0f}")
sys.exit(code)
EOF
  echo "SMOKE $label rc=$?"
  python3 - /tmp/runs/$label <<'EOF'
import json, sys
from pathlib import Path
run = Path(sys.argv[1])
summary = json.loads((run / "summary.json").read_text()) if (run / "summary.json").exists() else {}
for key in ("eval_before", "eval_sft", "eval_after"):
    s = summary.get(key) or {}
    print(f"SMOKE {key}: reward={s.get('reward')} wall_s={s.get('wall_s')}")
print("SMOKE walls:", {k: v for k, v in summary.items() if k.endswith("_s") or "runtime" in k})
lines = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()] if (run / "metrics.jsonl").exists() else []
for stage in ("sft", "grpo"):
    steps = [l for l in lines if l.get("stage") == stage]
    if steps:
        print(f"SMOKE {stage}: {len(steps)} logged steps; first {steps[0]}; last {steps[-1]}")
EOF
  cp /tmp/runs/$label/summary.json "$OUT/${label}_summary.json"
  cp /tmp/runs/$label/metrics.jsonl "$OUT/${label}_metrics.jsonl"
}
train demo --set sft.steps=120 --set grpo.steps=6 --set eval.num_examples=30
cp /tmp/runs/demo/learning_curve.png "$OUT/demo_learning_curve.png"
if [ $(( $(date +%s) - T0 )) -lt 170 ]; then  # the config's full defaults, if time is left
  timeout 180 bash -c "$(declare -f train); train full"
  cp /tmp/runs/full/metrics.jsonl "$OUT/full_metrics.jsonl"  # also when the time cap cut the run
fi
kill $SMI
echo "SMOKE total_s=$(( $(date +%s) - T0 ))"
