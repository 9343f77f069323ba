r"""Best-looking results: nearest-neighbour matching, sliced Wasserstein, self-similarity, content.

  python scripts/stylize.py --content samples/astronaut.png --style samples/style_swirls.png \
    --output out/astronaut_hq.png --config configs/hq.py --workdir runs/hq

Four objectives, each fixing what another lacks (chosen by eye at 160 px on the astronaut with
the swirls and ihc styles, against configs/nnst.py, configs/sliced.py and other weights):

* Nearest-neighbour hypercolumn matching (configs/nnst.py's settings: rotations of the style,
  matches searched again every 50 steps from 0.25 output + 0.75 content) copies the style's
  local textures most faithfully, but alone it lets faces and small shapes dissolve into them,
  and it can use a few style patches over and over.
* The sliced Wasserstein loss, relative per layer (so relu1_1, the colours, counts as much as
  relu4_1), pulls the whole feature distribution towards the style's: all of its colours and
  textures, in their proportions. That replaces NNST's colour post-process, which keeps only the
  content's colour layout.
* STROTSS's self-similarity content loss (relu2_1, relu3_1, relu4_1) keeps the layout of the
  content (a face stays a face) without holding its colours and textures in place as a feature
  MSE does. At weight 3 it held too much of the photograph; at 1 the balance looked best.
* A light feature-MSE content term (relu4_2, weight 0.5; the matching has 1, sliced 1.8,
  self-similarity 1.75) holds the shapes where the style's patches cannot draw them (a cat in
  gravel, towers in a star field): without it, 2 of the 4 held-out pairs of docs/quality.md lost
  their content at 128 px (content ratio 0.65 and 0.68); with it, 4 of 4 are balanced at 128,
  256 and 512 px (content 0.20-0.49, style 0.09-0.29). Chosen on the tuning pairs at 128 px (3
  of 3 balanced).

Coarse to fine over 3 scales (192, 384, 768 px), 200 Adam steps each. Meant for an
accelerator: the nearest-neighbour search at 768 px compares 36864 output positions with
147456 style positions (4 rotations), about 29 TFLOP per search, and its target holds about
2.4 GB per pair. On a CPU use --config.image_size=384 (about 10 minutes per image on 2 cores).
"""

import pathlib

from nst_jax.run import config as config_lib


def get_config():
  config = config_lib.from_file(pathlib.Path(__file__).with_name('nnst.py'))
  config.image_size = 768
  config.schedule.num_scales = 3
  config.schedule.coarse_steps = 200
  config.schedule.num_steps = 200
  # Normalised weights (relative importances) that keep the balance chosen by eye at 160-256 px
  # with raw weights 1 : 2 : 1, whose reference values there were 0.48, 0.43 and 0.85.
  config.losses.sliced.weight = 1.8
  config.losses.sliced.relative = True
  config.losses.self_similarity.weight = 1.75
  config.losses.self_similarity.layers = {'relu2_1': 1.0, 'relu3_1': 1.0, 'relu4_1': 1.0}
  config.losses.content.weight = 0.5
  config.losses.gram.weight = 0.0  # The sliced term stands for it.
  config.color_control = 'none'
  return config
