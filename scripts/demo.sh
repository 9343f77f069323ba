#!/usr/bin/env bash
# The quick start: installs nst_jax into .venv (first run only), writes the sample images, then
# stylizes one photograph and makes a 2 x 2 style grid. Results go to out/.
# Usage: bash scripts/demo.sh [extra flags for both scripts, e.g. --config.schedule.num_steps=50]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh samples
python scripts/make_samples.py --out samples
python scripts/stylize.py --content samples/astronaut.png --style samples/style_swirls.png \
  --output out/astronaut_swirls.png --config configs/fast.py --workdir out/run_stylize "$@"
python scripts/style_grid.py --contents samples/chelsea.png,samples/coffee.png \
  --styles samples/style_mosaic.png,samples/style_waves.png --output out/grid.png \
  --config configs/grid.py --workdir out/run_grid "$@"
echo "Done: out/astronaut_swirls.png, out/grid.png (cells in out/grid_cells/), workdirs in out/run_*"
