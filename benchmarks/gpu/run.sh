#!/usr/bin/env bash
# One device run on a lent H100 (see benchmarks/README.md). Carry two ignored folders:
#   .whl       megatron-core 0.19.2, webdataset, braceexpand wheels for Python 3.12 (pip download recipe in the README)
#   .gpu-data  the demo compiled at seq 4096 for a text-only GPTModel:
#              litdata demo --out .gpu-data/demo4096 --seq-len 4096 --image-tokens 1
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-benchmarks/gpu/out}"
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import megatron.core, torch; print('megatron-core', megatron.core.__version__, 'torch', torch.__version__)" \
  | tee -a "$OUT/gpu.txt"
# A cheap smoke run first: the tiny preset on the same data catches API errors in seconds.
timeout 120 python3 benchmarks/gpu/bench_train.py --device cuda --model tiny --steps 2 --warmup 1 \
  --seq-length 4096 --data .gpu-data/demo4096 --out "$OUT/tiny" > "$OUT/tiny.log" 2>&1 \
  || { echo "tiny smoke run failed:"; tail -40 "$OUT/tiny.log"; exit 1; }
echo "tiny smoke run ok"
timeout 250 python3 benchmarks/gpu/bench_train.py --device cuda --model 1b --steps 8 --warmup 3 \
  --micro-batch-size 2 --data .gpu-data/demo4096 --out "$OUT" 2>&1 | tee "$OUT/bench.log" | tail -60
# The same 1B preset on synthetic shards with a 32000-token vocabulary: the configuration of the 398 TFLOP/s
# causal-attention reference measured earlier (1.34B parameters), for a like-for-like figure.
timeout 220 python3 benchmarks/gpu/bench_train.py --device cuda --model 1b --steps 8 --warmup 3 \
  --micro-batch-size 2 --out "$OUT/synthetic" > "$OUT/synthetic.log" 2>&1 || tail -20 "$OUT/synthetic.log"
grep -E '"(parameters|tokens_per_s|tflops|vit_over_lit_step_time|packed_over_unpacked_real_tokens)"' \
  "$OUT/synthetic/bench.json"
