#!/usr/bin/env bash
# One prepared call on a lent GPU machine (issue 17's GPU section): the Cuda backend's tests, then
# benchmarks/compare_gpu.py (bijou against PyTorch eager on the same GPU). The lent time is short, so
# nothing here builds: BIN holds bijou_cuda_tests, bijou_cuda_no_gpu_test and bench_models_cuda,
# built beforehand (on a machine with nvcc) for the GPU's architecture (CMAKE_CUDA_ARCHITECTURES, 90 by
# default) and without -march=native (the GPU machine's processor may lack this one's instructions).
#
#   benchmarks/gpu_checks.sh BIN OUT [compare_gpu.py options...]
#
# Each step runs under its own time limit (120 + 30 + 420 s at most: give the call ~600 s; the compare
# step of 6 cells x 3 rounds x 3 s took ~320 s on an H200, PyTorch starting in ~12 s) and its log
# goes to OUT, so a failing or hanging step still leaves the others' results. Exit status: 0 when every
# step passed.
set -u
bin=${1:?usage: gpu_checks.sh BIN OUT [compare_gpu options]}
out=${2:?usage: gpu_checks.sh BIN OUT [compare_gpu options]}
shift 2
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
status=0

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv 2>&1 | tee "$out/gpu.txt"
nproc | sed 's/^/host cores: /' | tee -a "$out/gpu.txt"

# The binaries link libcudart/libcublas 13 by RUNPATH; where that toolkit lives elsewhere, look for it.
# Searched where toolkits and Python's CUDA wheels put them, under a time limit (the lease is short).
if ldd "$bin/bijou_cuda_tests" | grep -q "not found"; then
    for name in libcublas.so.13 libcudart.so.13; do
        dir=$(timeout 30 find /usr/local /usr/lib /opt -name "$name" 2>/dev/null | head -1)
        [ -n "$dir" ] && export LD_LIBRARY_PATH="$(dirname "$dir"):${LD_LIBRARY_PATH:-}"
    done
    echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}" | tee -a "$out/gpu.txt"
    ldd "$bin/bijou_cuda_tests" | grep "not found" && status=1
fi

step() {  # step NAME SECONDS COMMAND...: run under a time limit, log to OUT/NAME.log, report
    local name=$1 limit=$2 t0=$SECONDS rc
    shift 2
    timeout -k 10 "$limit" "$@" >"$out/$name.log" 2>&1
    rc=$?
    echo "== $name: rc $rc in $((SECONDS - t0)) s"
    return $rc
}

# The tests: every case with its duration; the summary lines go to the reply.
step cuda_tests 120 "$bin/bijou_cuda_tests" --duration=true || status=1
grep -E "^\[doctest\]|ERROR|FAILED|error" "$out/cuda_tests.log" | tail -40
grep -E "s: " "$out/cuda_tests.log" | sort -t: -k1 -g | tail -8
# On a GPU the no-GPU error test skips (77).
step cuda_no_gpu 30 "$bin/bijou_cuda_no_gpu_test"
[ $? -eq 77 ] || { echo "cuda_no_gpu: expected 77 (skipped) on a GPU"; status=1; }

step compare_gpu 420 python3 "$here/compare_gpu.py" --bijou "$bin/bench_models_cuda" --python python3 \
    --out "$out/gpu.json" "$@" || status=1
tail -12 "$out/compare_gpu.log"
exit $status
