#!/usr/bin/env bash
# GPU smoke check of the in-process engine (bench/gpu_smoke.py): generation tokens/s on the device, tic-tac-toe
# GRPO steps (the trainer `haystack-rl train` builds) and GRPO's loss pass (plain vs shared prompts), each printing
# `SMOKE ...` lines with tokens/s. Never required by tests; run it whenever a GPU is at hand.
#
#   bash bench/gpu_smoke.sh                  # on the GPU machine (device auto: cuda when visible)
#   bash bench/gpu_smoke.sh --device cpu     # dry run anywhere (also: SMOKE_DEVICE=cpu)
#   bash bench/gpu_smoke.sh --fetch-wheels   # here, before a device run: fill .whl/ (see below)
#
# The lent device machine (see /work/.library/device/README.md) has torch, transformers, accelerate, peft,
# pyarrow and friends, but not haystack-ai, trl, datasets, openai and some of their dependencies: they travel as
# wheels in the git-ignored .whl/, fetched here for cp312 manylinux x86_64 at the versions of this .venv by
# `--fetch-wheels` (transformers, tokenizers, huggingface-hub and accelerate too, so the device runs the versions
# the tests ran here). Through the device tool:
#   run(command="bash bench/gpu_smoke.sh", carry=[".whl"], timeout_s=420)
# Outputs in $OUT: log, smoke.json, gpu.csv (nvidia-smi samples, once a second).
set -uo pipefail
DEVICE=${SMOKE_DEVICE:-auto}
FETCH=0
while [ $# -gt 0 ]; do
  case $1 in
    --device) DEVICE=$2; shift 2 ;;
    --fetch-wheels) FETCH=1; shift ;;
    *) echo "usage: bash bench/gpu_smoke.sh [--device auto|cuda|cpu] [--fetch-wheels]" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."
PY=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}

# The packages the device image lacks (or has at other versions), pinned to this .venv's versions.
WHEELS="haystack-ai trl datasets openai transformers tokenizers huggingface-hub accelerate safetensors
  annotated-types backoff dill distro docstring-parser filetype jiter jsonschema jsonschema-specifications
  lazy-imports more-itertools multiprocess opentelemetry-api platformdirs posthog pydantic pydantic-core
  referencing rpds-py sniffio tenacity tomlkit truststore typing-inspection tzdata xxhash"
if [ $FETCH = 1 ]; then
  exclude=$(git rev-parse --git-path info/exclude)
  grep -qx '/.whl/' "$exclude" 2>/dev/null || echo '/.whl/' >> "$exclude"
  mkdir -p .whl
  for name in $WHEELS; do
    version=$($PY -m pip show "$name" 2>/dev/null | sed -n 's/^Version: //p')
    [ -n "$version" ] || { echo "not installed here: $name (skipped)"; continue; }
    $PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
      -d .whl "$name==$version" || echo "FETCH failed: $name==$version"
  done
  du -sh .whl
  exit 0
fi

OUT=${OUT:-/tmp/gpu_smoke_out}
mkdir -p "$OUT"
exec > >(tee "$OUT/log") 2>&1
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export HAYSTACK_RL_CACHE=${HAYSTACK_RL_CACHE:-/tmp/hrl_cache}
T0=$(date +%s)

# 1. The machine.
command -v nvidia-smi >/dev/null && nvidia-smi
$PY -c 'import sys, torch; print(sys.version); print("torch", torch.__version__, "cuda", torch.version.cuda,
  "available", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-")'

# 2. Packages: the carried wheels (if any); haystack_rl from this checkout, haystack_rl_envs (envs/) via a link.
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  mkdir -p /tmp/pp && ln -sfn "$PWD/envs" /tmp/pp/haystack_rl_envs
  export PYTHONPATH=/tmp/site:/tmp/pp:$PWD:$PWD/bench
else
  export PYTHONPATH=$PWD/bench
fi
$PY -c 'from importlib.metadata import version as v
import haystack, trl, datasets, openai, transformers, torch, haystack_rl, haystack_rl_envs
print({n: v(n) for n in ["haystack-ai", "trl", "datasets", "openai", "transformers", "accelerate", "peft", "torch"]})' \
  || exit 1

if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 1 > "$OUT/gpu.csv" &
  SMI=$!
fi

# 3. The checks (CPU dry run: smaller sizes, same code paths).
if [ "$DEVICE" = cpu ]; then
  SIZES="--concurrency 16 --max-new-tokens 16 --grpo-steps 1 --batch 16"
else
  SIZES=""
fi
# shellcheck disable=SC2086
$PY bench/gpu_smoke.py --device "$DEVICE" --out "$OUT" $SIZES
STATUS=$?
[ -n "${SMI:-}" ] && kill "$SMI"
rm -rf "$OUT/runs"  # checkpoints and metrics of the GRPO part: not worth carrying back
echo "SMOKE exit=$STATUS total_s=$(( $(date +%s) - T0 ))"
exit $STATUS
