r"""pastiche 1.6's objective and optimizer, for comparing time to quality with it.

  python scripts/quality_curve.py --contents samples/astronaut.png \
    --styles samples/style_swirls.png --configs configs/compare/pastiche.py \
    --eval_config configs/compare/pastiche.py --size 256

pastiche (a PyTorch Gatys implementation with the same VGG19 weights) minimises: content MSE on
relu4_2 with weight 0.01, plus the MSE of Gram matrices divided by H*W on relu1_1..relu5_1 with
layer weights 10 / C^2 (C the layer's channels), by L-BFGS from the content. These are the same
terms here, so `--eval_config configs/compare/pastiche.py` scores both on one scale. Unlike
pastiche, nst_jax keeps the image in [0, 1] at every step. See docs/quality.md.

Not a preset (configs/compare/ holds other tools' objectives): its weights are pastiche's, in the
losses' own units, so its balance changes with the size (at 128 px it keeps almost no content),
where the presets' normalised weights hold it.
"""

from nst_jax.core import vgg
from nst_jax.run import config as config_lib


def get_config():
  config = config_lib.default_config()
  config.image_size = 256
  config.schedule.num_steps = 400
  config.normalize_losses = False  # pastiche's raw weights, in its units.
  config.losses.content.weight = 0.01
  config.losses.gram.weight = 1.0
  gram = config.losses.gram
  channels = {name: vgg.BLOCK_CHANNELS[int(name[4]) - 1][0] for name in gram.layers}
  gram.layers = {name: 10.0 / c**2 for name, c in channels.items()}
  return config
