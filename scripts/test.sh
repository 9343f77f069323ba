#!/usr/bin/env bash
# Runs the test suite in a virtual environment of its own (.venv), created on first use.
# Usage: bash scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh test
# worksteal: a worker that runs out of tests takes some of the other's queue, so that the slow
# tests at the end of one queue do not leave a core idle.
exec python -m pytest -n 2 --dist worksteal "$@"
