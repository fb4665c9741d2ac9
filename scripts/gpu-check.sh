#!/usr/bin/env bash
# The GPU checks in two halves, for a GPU machine that has no Swift (see DEVELOPERS.md / DESIGN.md "GPU"):
#
#   scripts/gpu-check.sh prepare   # here: the release bundle (scripts/package.sh: the static binary and the shared
#                                  # libraries it needs beyond a base system), copied to .build/gpu-check/bundle.tar.gz
#   scripts/gpu-check.sh run       # there (carry .build/gpu-check): every Backend operation against the reference
#                                  # (`megatron-bert test-ops --device cuda`), CUDA against the CPU on every fixture and head,
#                                  # the 345M shape against transformers, every task, the error paths, and bench
#                                  # beside PyTorch FP16; the report goes to $OUT/gpu-report.md (or ./gpu-report.md)
#
# With the device tool: run(command: "scripts/gpu-check.sh run", carry: [".build/gpu-check"], timeout_s: 540)
# (GPU_CHECK_SKIP=bench,fused,compile skips sections to save device time; section 7, PyTorch under torch.compile, runs
# last and stops after GPU_CHECK_COMPILE_SECONDS, default 150, keeping the points it finished.)
set -euo pipefail
cd "$(dirname "$0")/.."
stage=.build/gpu-check
case "${1:-}" in
prepare)
  # The release bundle (scripts/package.sh): the static binary with every library it needs beside it.
  scripts/package.sh
  rm -rf "$stage" && mkdir -p "$stage"
  version=$(.build/release/megatron-bert --version)
  cp "dist/megatron-bert-$version-linux-x86_64.tar.gz" "$stage/bundle.tar.gz"
  ls -la "$stage"
  ;;
run)
  [ -f "$stage/bundle.tar.gz" ] || { echo "no $stage/bundle.tar.gz: run 'scripts/gpu-check.sh prepare' first (and carry $stage)" >&2; exit 2; }
  work=$(mktemp -d)
  tar -C "$work" -xzf "$stage/bundle.tar.gz"
  binary=$(echo "$work"/megatron-bert-*/bin/megatron-bert)
  export MEGATRON_BERT_CACHE="$work/cache"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
  python=python3
  for candidate in python3 /usr/bin/python3 /opt/conda/bin/python; do
    if "$candidate" -c "import torch, transformers, safetensors" 2>/dev/null; then python=$candidate; break; fi
  done
  "$binary" info --model Tests/MegatronBERTTests/Fixtures/models/megatron-Model | tail -12
  # Every Backend operation on the GPU against the reference backend (fp32, fp16, bf16; random and odd shapes).
  "$binary" test-ops --device cuda | tee "${OUT:-.}/gpu-test-ops.txt" | tail -40 || echo "test-ops: some operations are outside their bounds (above)"
  "$python" scripts/gpu_check.py --binary "$binary" --report "${OUT:-.}/gpu-report.md" ${GPU_CHECK_SKIP:+--skip "$GPU_CHECK_SKIP"} \
    --compile-seconds "${GPU_CHECK_COMPILE_SECONDS:-150}"
  ;;
*)
  echo "usage: scripts/gpu-check.sh prepare | run" >&2
  exit 2
  ;;
esac
