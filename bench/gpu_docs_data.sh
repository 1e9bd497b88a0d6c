#!/usr/bin/env bash
# The GPU figures of the docs, on a CUDA machine (torch CUDA; Keras on JAX or TF; paddle GPU when installed).
# OUTDIR docs/generated/gpu writes them where the docs read them; then: python bench/render_gpu.py
#   bash bench/gpu_docs_data.sh parity OUTDIR   # GPU tests, measured tolerances, parity reports (correctness)
#   bash bench/gpu_docs_data.sh bench  OUTDIR   # resnet bench --device gpu: torch paths (timing; run alone)
#   bash bench/gpu_docs_data.sh keras  OUTDIR   # Keras paths and the 'same'-padding experiment (timing)
# Each step has its own time limit and writes as it goes, so a cut-off run still leaves what it measured.
set -u
phase=${1:?phase: parity, bench or keras}
out=${2:?output folder}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3 XLA_PYTHON_CLIENT_PREALLOCATE=false
PY=${PYTHON:-python3}
resnet() { $PY -m resnet_tools.cli "$@"; }
backends=${BACKENDS:-torch,keras}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu-$phase.txt"

case $phase in
parity)
  (timeout 300 $PY -m pytest parity_tests/test_gpu.py -q -p no:cacheprovider -rs > "$out/pytest-gpu.log" 2>&1;
   echo "pytest exit $?" >> "$out/pytest-gpu.log") &
  (timeout 330 $PY bench/measure_tolerances.py --device gpu --backends "$backends" \
     --models resnet18,resnet50v2 --seeds 0,1 --out "$out/tolerances-gpu.json" > "$out/tolerances-gpu.log" 2>&1) &
  (for args in "float32-all --dtype float32 --models all" "bfloat16 --dtype bfloat16" "float16 --dtype float16" \
               "train-fp64 --mode train --dtype float64 --models resnet18,resnet50v2 --input 2x3x64x80"; do
     name=${args%% *}; args=${args#* }
     timeout 150 $PY -m resnet_tools.cli parity --device gpu --backends "$backends" $args \
       --force --report "$out/parity-gpu-$name" > "$out/parity-gpu-$name.log" 2>&1
     echo "exit $?" >> "$out/parity-gpu-$name.log"
   done) &
  wait
  tail -n 3 "$out"/pytest-gpu.log "$out"/tolerances-gpu.log "$out"/parity-gpu-*.log
  ;;
bench)
  timeout 200 $PY -m resnet_tools.cli bench --device gpu --backends torch --models resnet50 --batch 1,32,256,512 \
    --paths "eager fp32,eager tf32,channels_last bf16,channels_last fp16" --min-time 2 \
    --force --json "$out/bench-gpu-torch-eager.json" 2>&1 | tail -n 40
  timeout 330 $PY -m resnet_tools.cli bench --device gpu --backends torch --models resnet50 --batch 256 \
    --paths "torch.compile bf16,torch.compile cudagraphs bf16" --min-time 2 \
    --force --json "$out/bench-gpu-torch-compile.json" 2>&1 | tail -n 20
  ;;
train)  # training steps (SGD momentum), then the parity reports the docs link to
  timeout 150 $PY -m resnet_tools.cli bench --device gpu --backends torch --models resnet50 --batch 256 --mode train \
    --min-time 2 --force --json "$out/bench-gpu-torch-train.json" 2>&1 | tail -n 12
  for args in "bfloat16 --dtype bfloat16" "float16 --dtype float16" \
              "train-fp64 --mode train --dtype float64 --models resnet18,resnet50v2 --input 2x3x64x80"; do
    name=${args%% *}; args=${args#* }
    timeout 150 $PY -m resnet_tools.cli parity --device gpu --backends "$backends" $args \
      --force --report "$out/parity-gpu-$name" > "$out/parity-gpu-$name.log" 2>&1 &
  done
  wait
  grep -h "pairs within" "$out"/parity-gpu-*.log
  ;;
rest)  # what does not fit in 'parity' on one machine in 10 minutes: float64 train, the other fp32/fp64 cases
  (timeout 330 $PY -m pytest parity_tests/test_gpu.py -q -p no:cacheprovider -rs -k "not cross_framework_parity_on_gpu and not cpu_vs_gpu" > "$out/pytest-gpu-rest.log" 2>&1;
   echo "pytest exit $?" >> "$out/pytest-gpu-rest.log") &
  (timeout 330 $PY bench/measure_tolerances.py --device gpu --backends "$backends" --models resnet18 --seeds 0,1 \
     --cases float64/train,float32/eval,float64/eval,float32/train --merge --out "$out/tolerances-gpu.json" \
     > "$out/tolerances-gpu-rest.log" 2>&1) &
  (timeout 200 $PY -m resnet_tools.cli parity --device gpu --backends "$backends" --mode train --dtype float64 \
     --models resnet18,resnet50v2 --input 2x3x64x80 --force --report "$out/parity-gpu-train-fp64" > "$out/parity-gpu-train-fp64.log" 2>&1;
   timeout 120 $PY -m resnet_tools.cli parity --device gpu --backends "$backends" --dtype float16 \
     --force --report "$out/parity-gpu-fp16" > "$out/parity-gpu-fp16.log" 2>&1) &
  wait
  tail -n 4 "$out"/pytest-gpu-rest.log "$out"/tolerances-gpu-rest.log; grep -h "pairs within" "$out"/parity-gpu-*.log
  ;;
keras)
  timeout 120 $PY bench/keras_padding.py --model resnet50v2 --batch 256 --min-time 2 \
    --force --json "$out/keras-padding.json" 2>&1 | grep -v Warning
  timeout 380 $PY -m resnet_tools.cli bench --device gpu --backends keras --models resnet50v2,resnet50v1,resnet50 \
    --batch 256 --min-time 2 --force --json "$out/bench-gpu-keras.json" 2>&1 | tail -n 30
  ;;
esac
