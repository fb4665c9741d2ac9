#!/usr/bin/env bash
# The test command: installs what is missing (OpenBLAS, pip), builds, and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --tests
# NVRTC compiles the GPU kernels in the tests on every machine, GPU or not: PyPI's nvidia-cuda-nvrtc wheel, unpacked
# (not installed) into .build/nvrtc once, and named in $MEGATRON_BERT_CUDA_PATH.
if ! ls .build/nvrtc/nvidia/*/lib/libnvrtc.so.* >/dev/null 2>&1; then
  rm -rf .build/nvrtc .build/nvrtc-wheel
  python3 -m pip download --quiet --no-deps --only-binary=:all: 'nvidia-cuda-nvrtc>=13,<14' -d .build/nvrtc-wheel >&2
  python3 -m zipfile -e .build/nvrtc-wheel/nvidia_cuda_nvrtc-*.whl .build/nvrtc
  rm -rf .build/nvrtc-wheel
fi
MEGATRON_BERT_CUDA_PATH="$(cd .build/nvrtc/nvidia/*/lib && pwd)"
export MEGATRON_BERT_CUDA_PATH
# The architecture's rules (MegatronBackend links nothing but Foundation, the model sees the protocol only, …).
swift package dump-package | python3 scripts/check_targets.py
swift build --build-tests
# The reliability cases (scripts/hostile.py) run against the release binary, the one users run: the release bundle's
# (scripts/package.sh builds it with the Swift standard library linked statically, bundles the shared libraries it
# needs, checks that they resolve inside the bundle, and writes the tarball and the wheel into dist/).
scripts/package.sh
swift test
# Hostile connections against `serve` (issue 36): stalls, half-sent heads and bodies, lying lengths, resets,
# half-closes, a descriptor limit, SIGTERM with a stuck client — the standard library's sockets, the release binary.
python3 scripts/hostile_server.py --binary .build/release/megatron-bert
# The GPU's fused attention kernel on the CPU: its own source, with a block's threads, barriers, warp shuffles and
# tensor-core steps emulated (no GPU needed), against attention in double.
python3 scripts/check_fused_attention.py
# megatron-bert as a worker of Ray Data on a real local Ray cluster (ray[data] from PyPI, into .build/workers-venv).
# The Spark tests (pyspark is ~450 MB) run with scripts/test-workers.sh --spark.
scripts/test-workers.sh
