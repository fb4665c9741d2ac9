#!/usr/bin/env bash
# The test command: installs what is missing (OpenBLAS, pip), builds, and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --tests
swift build --build-tests
# The reliability cases (scripts/hostile.py) run against the release binary, the one users run.
swift build -c release
swift test
