r"""Style grids: every content with every style, at a moderate size, in one batch.

  python scripts/style_grid.py --contents samples/astronaut.png,samples/coffee.png \
    --styles samples/style_swirls.png,samples/style_mosaic.png --output out/grid.png \
    --config configs/grid.py

The default config of scripts/style_grid.py: configs/fast.py (256 px, Adam) with 120 steps, so
that a grid of a few contents and styles stays quick, as one batch sharded over the devices.
"""

import pathlib

from nst_jax.run import config as config_lib


def get_config():
  config = config_lib.from_file(pathlib.Path(__file__).with_name('fast.py'))
  config.schedule.num_steps = 120
  return config
