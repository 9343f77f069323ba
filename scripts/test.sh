#!/usr/bin/env bash
# Runs the test suite in a virtual environment of its own (.venv), created on first use.
# Usage: bash scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh test
exec python -m pytest -n 2 "$@"
