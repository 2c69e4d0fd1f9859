#!/usr/bin/env bash
# The GPU check of docs/timing.md, in one command of under 8 minutes on a CUDA machine:
#   bash benchmarks/gpu.sh [OUT]        (default OUT: results/gpu-check)
# 1. the CUDA-event test of the timing harness (tests/test_timing.py -k cuda);
# 2. benchmarks/speed.py on the GPU: realized/FLOPs speed-up ratios;
# 3. the tiny config (config/tiny.yaml) on the GPU up to its timing stage and inference-time table.
# Everything it writes lands under OUT: versions, nvidia-smi, the test and benchmark output, and the
# tiny run (OUT/run/results/tiny/{timing,tables,plots}, its logs in OUT/run/logs).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-results/gpu-check}
BIN=${VENV_BIN:-.venv/bin}
mkdir -p "$OUT/run"
OUT=$(cd "$OUT" && pwd)

"$BIN/python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
  || { echo "benchmarks/gpu.sh: no CUDA device visible to torch" >&2; exit 2; }
{ nvidia-smi || true; } > "$OUT/nvidia-smi.txt" 2>&1
"$BIN/hashee" info > "$OUT/info.txt"

timeout 60 "$BIN/python" -m pytest -q tests/test_timing.py -k cuda 2>&1 | tee "$OUT/test_cuda.txt"
timeout 200 "$BIN/python" benchmarks/speed.py --device cuda --repeats 20 2>&1 | tee "$OUT/speed.txt"

# The tiny config's DAG up to the comparison: train jobs on the GPU one slot at a time, then the
# timing stage alone (no warm start: the GPU is initialised in each job's own process).
timeout 210 "$BIN/snakemake" --snakefile "$PWD/Snakefile" --directory "$OUT/run" --configfile "$PWD/config/tiny.yaml" \
  --config gpus=1 --cores 4 --resources gpu=1 inference_time 2>&1 | tail -n 30 | tee "$OUT/snakemake.txt"
cp "$OUT"/run/results/tiny/timing/*.csv "$OUT/" 2>/dev/null || true
cat "$OUT/run/results/tiny/tables/inference_time.md" | tee "$OUT/inference_time.md"
echo "benchmarks/gpu.sh: results under $OUT"
