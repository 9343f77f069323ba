r"""Sliced Wasserstein style loss (Heitz et al. 2021): the whole feature distribution, sorted.

  python scripts/stylize.py --content samples/astronaut.png --style samples/style_swirls.png \
    --output out/astronaut_sliced.png --config configs/sliced.py

Feature MSE for the content (relu4_2), and for the style the sliced Wasserstein distance on
relu1_1..relu5_1: 64 random directions per layer, redrawn at every step, the sorted
projections compared. Each layer's loss is relative to the style's second moment
(sliced_relative), so that relu1_1, which carries the colours, counts as much as relu4_1, whose
activations are about 100 times larger: in squared feature units the style's colours barely
moved (the astronaut's suit stayed orange under a blue style). Style 3 : content 1 (relative
importances, config.normalize_losses): at 1 : 1 the result kept too little of the style on three
held-out pairs of four (docs/quality.md, "Balance at any size"). One scale, 300 Adam steps. The
comparison sheets (scripts/compare_methods.py) run the Gram and Gaussian losses on this same
schedule, so that only the style loss differs.
"""

from nst_jax.run import config as config_lib


def get_config():
  config = config_lib.default_config()
  config.image_size = 512
  config.losses.gram.weight = 0.0
  config.losses.sliced.weight = 3.0
  config.losses.sliced.relative = True
  config.optim.name = 'adam'
  config.optim.learning_rate = 0.02
  config.schedule.num_steps = 300
  config.schedule.chunk_size = 50
  return config
