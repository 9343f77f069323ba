r"""The seed: the classic TensorFlow style-transfer tutorial this project started from.

  python scripts/stylize.py --content samples/astronaut.png --style samples/style_waves.png \
    --output out/astronaut_seed.png --config configs/seed.py

Starts from uniform noise, self-normalises the loss terms and adds an L1 total-variation
('denoising') term, optimised with Adam. Kept to compare against the seed's results; the image
emerges from noise, so it needs more steps than runs that start from the content.
"""

from nst_jax import config as config_lib


def get_config():
  config = config_lib.default_config()
  config.init = 'noise'
  config.normalize_terms = True
  # Self-normalised terms: the weights are ratios of the terms' relative gradients. From noise,
  # content:style 1:1 gives style alone and 10:1 content alone (128 px, 300 steps).
  config.terms.content = 3.0
  config.terms.style = 1.0
  config.terms.tv = 0.1
  config.tv_kind = 'l1'
  config.optimizer = 'adam'
  config.learning_rate = 0.02
  config.num_steps = 1000
  return config
