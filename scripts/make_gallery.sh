#!/usr/bin/env bash
# Regenerates the README gallery in docs/gallery/ with the project's own commands, at 256 px
# so that it runs on a CPU (about an hour on 2 cores with the regions examples; minutes on a GPU).
# Usage: bash scripts/make_gallery.sh [masks]   (masks: only the regions examples of docs/masks.md)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh samples
out=docs/gallery
mkdir -p "$out" /tmp/nst_gallery
python scripts/make_samples.py --out /tmp/nst_gallery/samples
s=/tmp/nst_gallery/samples
if [ "${1:-all}" != masks ]; then
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
fi
# Regions (docs/masks.md): masks made by code (nst_jax.lab.samples.write_mask_samples), 256 px,
# each with the Gram loss (100 L-BFGS steps) and the nearest-neighbour matching alone (the nnst
# preset without its Gram and content terms), shortened to fit a shared CPU (2 scales of 50 Adam
# steps).
python -c "import sys; from nst_jax.lab import samples; samples.write_mask_samples(sys.argv[1])" "$s"
mkdir -p "$out/masks"
region() {  # region NAME CONFIG [flags...]
  local name=$1 config=$2
  shift 2
  local steps=(--config.schedule.num_steps=100)
  if [ "$config" = nnst ]; then
    steps=(--config.schedule.num_scales=2 --config.schedule.coarse_steps=50
      --config.schedule.num_steps=50 --config.losses.gram.weight=0 --config.losses.content.weight=0)
  fi
  python scripts/stylize.py --output "$out/masks/${name}_$config.jpg" --config "configs/$config.py" \
    --config.image_size=256 "${steps[@]}" --workdir "/tmp/nst_gallery/${name}_$config" "$@"
}
for config in default nnst; do
  region rocket_sky "$config" --content "$s/rocket.png" \
    --style "$s/style_swirls.png,$s/style_mosaic.png" \
    --content_mask "$s/rocket_labels.png" --mask_colors '#000000,#ffffff'
  region astronaut_face "$config" --content "$s/astronaut.png" --style "$s/style_mosaic.png" \
    --content_mask "$s/astronaut_face.png"
  region rocket_ihc "$config" --content "$s/rocket.png" --style "$s/style_ihc.png" \
    --content_mask "$s/rocket_labels.png" --mask_colors '#000000,#ffffff' \
    --style_masks "$s/style_ihc_labels.png"
done
# The pictures of the regions that the runs wrote into their workdirs.
picture() {  # picture WORKDIR_FILE NAME: a regions picture, as JPEG
  python -c "import sys; from nst_jax.io import images; images.save_image(sys.argv[2], images.load_image(sys.argv[1]))" \
    "/tmp/nst_gallery/$1" "$out/masks/$2.jpg"
}
picture rocket_sky_default/regions/rocket.png rocket_sky_regions
picture astronaut_face_default/regions/astronaut.png astronaut_face_regions
picture rocket_ihc_default/regions/styles/style_ihc.png style_ihc_regions
# Thumbnails of the inputs, for the README's tables.
python - "$s" "$out" <<'PY'
import sys
from nst_jax.io import images
samples, out = sys.argv[1:]
for name in ('astronaut', 'chelsea', 'coffee', 'style_swirls', 'style_mosaic', 'style_waves',
             'style_ihc', 'rocket', 'style_ihc_labels'):
  images.save_image(f'{out}/{name}.jpg', images.load_image(f'{samples}/{name}.png', max_side=192))
PY
echo "Gallery written to $out"
