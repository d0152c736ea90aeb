#!/bin/bash
# Issue 15's GPU checks in one call of the `device` tool (about 8 minutes of its 15):
#   1. the GPU tests (tests/test_rng_checkpoint.py: a GPU run resumes bit-exactly;
#      tests/test_gpu_sync.py: an epoch waits for the GPU a fixed number of times, not per iteration);
#   2. benchmarks/gpu_table1.py: the 40 Table 1 members batched, timed in TF32 and bf16 (each with
#      the members' own noise streams and with member_noise: shared), and
#      2 real epochs of `reproduce table1`, extrapolated to 300;
#   3. benchmarks/conv_speed.py on the GPU (the conv presets' seconds per iteration).
# Prepare here once: `make gpu-wheels` (the packages the device image lacks, into .whl/).
# Then: device run, command "bash benchmarks/gpu_session.sh", carry [".whl"], timeout_s 560.
# What comes back lies in $OUT: gpu_tests.log, gpu_table1.md, table1_metrics.tar.gz, conv_speed.md;
# record them here with `python benchmarks/gpu_table1.py --record <files_at>/gpu_table1.md`.
set -o pipefail
OUT=${OUT:-gpu_out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  || { echo "no wheels in .whl/: run 'make gpu-wheels' on the developer machine and carry .whl"; exit 1; }
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1
nvidia-smi -L
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_rng_checkpoint.py tests/test_gpu_sync.py 2>&1 | tee "$OUT/gpu_tests.log" | tail -5
timeout 300 python3 benchmarks/gpu_table1.py --out "$OUT" 2>&1 | tee "$OUT/gpu_table1.log" | tail -25
timeout 80 python3 benchmarks/conv_speed.py --device cuda --threads 8 --iters 20 2>&1 | tee "$OUT/conv_speed.md" | tail -12
rm -rf "$OUT/table1_runs"  # checkpoints stay behind: only text comes back
