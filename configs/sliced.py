r"""Sliced Wasserstein style loss (Heitz et al. 2021): the whole feature distribution, sorted.

  python scripts/stylize.py --content samples/astronaut.png --style samples/style_swirls.png \
    --output out/astronaut_sliced.png --config configs/sliced.py
"""

from nst_jax import config as config_lib


def get_config():
  config = config_lib.default_config()
  config.image_size = 512
  config.style_loss = 'sliced'
  config.terms.content = 1.0
  config.terms.style = 50.0
  config.optimizer = 'adam'
  config.learning_rate = 0.02
  config.num_steps = 300
  config.chunk_size = 50
  return config
