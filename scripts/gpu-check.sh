#!/usr/bin/env bash
# The GPU checks in two halves, for a GPU machine that has no Swift (see DEVELOPERS.md / DESIGN.md "GPU"):
#
#   scripts/gpu-check.sh prepare   # here: a static release binary and the shared libraries it needs beyond a base
#                                  # system (oneDNN, OpenBLAS, ...), packed into .build/gpu-check/bundle.tar.xz
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
  # The static FoundationNetworking links -lcurl; without the -dev package's symlink, point one at the runtime library.
  links=()
  if ! ld -lcurl -o /dev/null --unresolved-symbols=ignore-all 2>/dev/null; then
    mkdir -p .build/curl-link
    ln -sf "$(ldconfig -p | awk '/libcurl.so.4 .*x86-64/{print $NF; exit}')" .build/curl-link/libcurl.so
    links=(-Xlinker -L"$PWD/.build/curl-link")
  fi
  # A build folder of its own: the static build and the usual one do not rebuild each other's every module.
  swift build -c release --static-swift-stdlib --scratch-path .build/static "${links[@]}"
  rm -rf "$stage" && mkdir -p "$stage/bundle/lib"
  cp .build/static/release/megatron-bert "$stage/bundle/"
  strip "$stage/bundle/megatron-bert"
  # Every shared library the binary loads, but the C library's own (the GPU machine has a newer glibc).
  ldd .build/static/release/megatron-bert | awk '/=> \//{print $3}' | while read -r lib; do
    case "$(basename "$lib")" in
      libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|ld-linux*) ;;
      *) cp -L "$lib" "$stage/bundle/lib/" ;;
    esac
  done
  tar -C "$stage" -cJf "$stage/bundle.tar.xz" bundle
  rm -rf "$stage/bundle"
  ls -la "$stage"
  ;;
run)
  [ -f "$stage/bundle.tar.xz" ] || { echo "no $stage/bundle.tar.xz: run 'scripts/gpu-check.sh prepare' first (and carry $stage)" >&2; exit 2; }
  work=$(mktemp -d)
  tar -C "$work" -xJf "$stage/bundle.tar.xz"
  export LD_LIBRARY_PATH="$work/bundle/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export MEGATRON_BERT_CACHE="$work/cache"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
  python=python3
  for candidate in python3 /usr/bin/python3 /opt/conda/bin/python; do
    if "$candidate" -c "import torch, transformers, safetensors" 2>/dev/null; then python=$candidate; break; fi
  done
  "$work/bundle/megatron-bert" info --model Tests/MegatronBERTTests/Fixtures/models/megatron-Model | tail -12
  # Every Backend operation on the GPU against the reference backend (fp32, fp16, bf16; random and odd shapes).
  "$work/bundle/megatron-bert" test-ops --device cuda | tee "${OUT:-.}/gpu-test-ops.txt" | tail -40 || echo "test-ops: some operations are outside their bounds (above)"
  "$python" scripts/gpu_check.py --binary "$work/bundle/megatron-bert" --report "${OUT:-.}/gpu-report.md" ${GPU_CHECK_SKIP:+--skip "$GPU_CHECK_SKIP"} \
    --compile-seconds "${GPU_CHECK_COMPILE_SECONDS:-150}"
  ;;
*)
  echo "usage: scripts/gpu-check.sh prepare | run" >&2
  exit 2
  ;;
esac
