r"""Best-looking results: nearest-neighbour matching, sliced Wasserstein and self-similarity.

  python scripts/stylize.py --content samples/astronaut.png --style samples/style_swirls.png \
    --output out/astronaut_hq.png --config configs/hq.py --workdir runs/hq
"""

import pathlib

from nst_jax import config as config_lib


def get_config():
  config = config_lib.from_file(pathlib.Path(__file__).with_name('nnst.py'))
  config.image_size = 768
  config.num_scales = 3
  config.coarse_steps = 200
  config.num_steps = 200
  config.terms.sliced = 3e-5
  config.content_loss = 'self_similarity'
  config.content_layers = {'relu2_1': 1.0, 'relu3_1': 1.0, 'relu4_1': 1.0}
  config.terms.content = 3.0
  config.color_control = 'none'
  return config
