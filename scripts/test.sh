#!/usr/bin/env bash
# Runs the test suite in a virtual environment of its own (.venv), created on first use.
# Usage: bash scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh test
# All but the tests marked slow (what CI runs, to stay within its 15 minutes on 2 cores); a later
# -m replaces this one: `bash scripts/test.sh -m ""` runs every test, `-m slow` the slow ones.
# worksteal: a worker that runs out of tests takes some of the other's queue.
exec python -m pytest -n 2 --dist worksteal -m "not slow" "$@"
