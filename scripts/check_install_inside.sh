#!/bin/sh
# Runs inside a fresh Debian root (scripts/check_install.sh copies it to /check and enters with chroot): the release
# tarball's binary and the installed wheel on a system that never saw the build. Writes every output to /check/out.
set -eu
cd /check
out=/check/out
mkdir -p "$out"
. /check/commands.sh  # the commands, the same as the build tree's binary ran (run_commands BINARY PREFIX)

# A machine without the build's tools: no Swift, no compiler, no oneDNN or OpenBLAS.
for tool in swift swiftc cc gcc clang; do
  if command -v "$tool" >/dev/null 2>&1; then echo "this root has $tool: not a machine that never saw the build" >&2; exit 1; fi
done
if ls /usr/lib/x86_64-linux-gnu | grep -E '^lib(dnnl|openblas|curl)' >/dev/null; then
  echo "this root has oneDNN, OpenBLAS or libcurl installed" >&2; exit 1
fi
echo "glibc: $(ldd --version | head -1)" > "$out/system.txt"
. /etc/os-release && echo "system: $PRETTY_NAME" >> "$out/system.txt"

# The tarball.
mkdir -p /opt/tarball && tar -C /opt/tarball -xzf /check/megatron-bert.tar.gz
run_commands /opt/tarball/megatron-bert-*/bin/megatron-bert tarball

# The wheel, into a virtual environment, with NumPy and the openai client from PyPI.
python3 -m venv /opt/venv
/opt/venv/bin/pip install --quiet --disable-pip-version-check "$(ls /check/megatron_bert-*.whl)[numpy]" openai
run_commands /opt/venv/bin/megatron-bert wheel
/opt/venv/bin/python /check/install_check_api.py api models > "$out/wheel-api.json"

# serve from the wheel, answered by the openai client.
/opt/venv/bin/megatron-bert serve --model models/minilm --port "$SERVE_PORT" --quiet > "$out/serve.log" 2>&1 &
server=$!
/opt/venv/bin/python /check/install_check_api.py openai "$SERVE_PORT" > "$out/wheel-openai.json" || { kill "$server"; exit 1; }
kill -TERM "$server"
wait "$server" || true
echo done > "$out/finished"
