r"""Quick preview: 256 px, 100 Adam steps.

  python scripts/stylize.py --content samples/astronaut.png --style samples/style_swirls.png \
    --output out/preview.png --config configs/fast.py

For trying styles and weights before a long run: a step costs about 0.7 s on 2 CPU cores (less
on a typical laptop), so about a minute plus the compile; seconds on a GPU. Adam with a high
learning rate gets most of the style in early; fine detail and smoothness need
configs/default.py or configs/hq.py.
"""

from nst_jax import config as config_lib


def get_config():
  config = config_lib.default_config()
  config.image_size = 256
  config.optimizer = 'adam'
  config.num_steps = 100
  config.learning_rate = 0.04
  config.chunk_size = 25
  return config
