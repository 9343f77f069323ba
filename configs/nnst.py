r"""Nearest-neighbour style transfer (after NNST, Kolkin et al. 2022), coarse to fine.

  python scripts/stylize.py --content samples/astronaut.png --style samples/style_swirls.png \
    --output out/astronaut_nnst.png --config configs/nnst.py
"""

from nst_jax import config as config_lib


def get_config():
  config = config_lib.default_config()
  config.image_size = 512
  config.num_scales = 4
  config.scale_ratio = 2.0
  config.coarse_steps = 200
  config.num_steps = 200
  config.style_loss = 'nearest_neighbor'
  config.terms.content = 0.0
  config.terms.style = 1.0
  config.nn_augment = 'rotations'
  config.nn_rematch_every = 50
  config.nn_content_mix = 0.75
  config.optimizer = 'adam'
  config.learning_rate = 0.01
  config.chunk_size = 50
  config.color_control = 'nnst'
  return config
