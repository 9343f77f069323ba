#!/usr/bin/env bash
# Regenerates the README gallery in docs/gallery/ with the project's own commands, at 256 px
# so that it runs on a CPU (about half an hour on 2 cores; minutes on a GPU).
# Usage: bash scripts/make_gallery.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh samples
out=docs/gallery
mkdir -p "$out" /tmp/nst_gallery
python scripts/make_samples.py --out /tmp/nst_gallery/samples
s=/tmp/nst_gallery/samples
run() {  # run NAME CONTENT STYLE CONFIG [overrides...]
  local name=$1 content=$2 style=$3 config=$4
  shift 4
  python scripts/stylize.py --content "$s/$content.png" --style "$s/style_$style.png" \
    --output "$out/$name.jpg" --config "configs/$config.py" --workdir "/tmp/nst_gallery/$name" "$@"
}
run astronaut_swirls_default astronaut swirls default --config.image_size=256 --config.schedule.num_steps=100
run chelsea_mosaic_fast chelsea mosaic fast
run coffee_waves_seed coffee waves seed --config.image_size=256
run astronaut_ihc_hq astronaut ihc hq --config.image_size=256 --config.schedule.num_scales=2 \
  --config.schedule.coarse_steps=100 --config.schedule.num_steps=100 --config.schedule.chunk_size=25
run coffee_swirls_preserve coffee swirls fast --config.color_control=preserve_colors
python scripts/style_grid.py --contents "$s/astronaut.png,$s/chelsea.png" \
  --styles "$s/style_swirls.png,$s/style_mosaic.png,$s/style_waves.png" \
  --output "$out/grid.jpg" --config configs/grid.py --workdir /tmp/nst_gallery/grid
rm -rf "$out/grid_cells"
# Thumbnails of the inputs, for the README's tables.
python - "$s" "$out" <<'PY'
import sys
from nst_jax import images
samples, out = sys.argv[1:]
for name in ('astronaut', 'chelsea', 'coffee', 'style_swirls', 'style_mosaic', 'style_waves',
             'style_ihc'):
  images.save_image(f'{out}/{name}.jpg', images.load_image(f'{samples}/{name}.png', max_side=192))
PY
echo "Gallery written to $out"
