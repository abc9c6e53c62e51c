#!/usr/bin/env bash
# Device run (lead): bash benchmarks/gpu/run.sh   -- installs the carried wheels offline, then benchmarks.
# Wheels are prepared on a machine with a registry:
#   pip download "megatron-core==0.19.*" --no-deps --python-version 3.12 --only-binary=:all: -d wheels/
#   pip download webdataset braceexpand --no-deps --python-version 3.12 --only-binary=:all: -d wheels/
# (plus megatron-core's pure-python runtime deps missing on the box, if any: check `pip check` output below)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-benchmarks/gpu/out}"
mkdir -p "$OUT"
python -m pip install --no-index --find-links wheels/ --no-deps megatron-core webdataset braceexpand 2>&1 | tail -3
python -c "import megatron.core, torch; print('megatron-core', megatron.core.__version__, 'torch', torch.__version__)"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # litdata itself is imported from the tree, not installed
timeout 420 python benchmarks/gpu/bench_train.py --device cuda --model 1b --steps 8 --warmup 3 \
    --micro-batch-size 2 --out "$OUT" 2>&1 | tee "$OUT/bench.log"
