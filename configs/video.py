r"""Video without flicker: Ruder et al.'s temporal loss and multi-pass algorithm (docs/video.md).

  python scripts/stylize_video.py --input frames/ --style samples/style_swirls.png \
    --output out/ --config configs/video.py

PROVISIONAL
"""

from nst_jax.run import config as config_lib


def get_config():
  config = config_lib.default_config()
  config.image_size = 256
  config.schedule.num_steps = 50  # Per pass.
  config.schedule.chunk_size = 25
  config.losses.temporal.weight = 100.0
  config.video.passes = 4
  return config
