#!/usr/bin/env bash
# The test command: sets up (idempotent) and runs the whole suite with ctest (GoogleTest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
ctest --test-dir build --output-on-failure -j"$(nproc)" --timeout 900 "$@"
