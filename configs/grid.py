r"""Style grids: every content with every style, at a moderate size, in one batch.

  python scripts/style_grid.py --contents samples/astronaut.png,samples/coffee.png \
    --styles samples/style_swirls.png,samples/style_mosaic.png --output out/grid.png \
    --config configs/grid.py

The default config of scripts/style_grid.py: 256 px and 120 Adam steps, so that a grid of a few
contents and styles stays quick, as one vmapped batch sharded over the devices.
"""

from nst_jax import config as config_lib


def get_config():
  config = config_lib.default_config()
  config.image_size = 256
  config.optimizer = 'adam'
  config.num_steps = 120
  config.learning_rate = 0.04
  config.chunk_size = 25
  return config
