"""nst_jax: batched, sharded Gatys-style neural style transfer in JAX.

    import nst_jax
    result = nst_jax.stylize(contents, styles, nst_jax.default_config())
    frames = nst_jax.stylize_video(frames, style, config)   # a clip without flicker

The loss functions live in one place, `nst_jax.losses` (e.g. `nst_jax.losses.gram_style_loss`);
the layers of the package are described in docs/architecture.md.
"""

from nst_jax.core import losses
from nst_jax.core.objective import combine_terms
from nst_jax.core.terms import LossTerm, register_loss, terms_from_config, unregister_loss
from nst_jax.core.vgg import LAYER_NAMES, VGG19
from nst_jax.errors import (
  ConfigError,
  ImageError,
  NonFiniteLossError,
  NSTError,
  StylizeInterrupted,
  WeightsError,
)
from nst_jax.io.images import load_image, save_image
from nst_jax.io.weights import load_vgg19, load_vgg19_params
from nst_jax.run.config import default_config
from nst_jax.run.engine import stylize
from nst_jax.run.history import History, Progress, StylizeResult
from nst_jax.run.optimizers import Optimizer, make_optimizer
from nst_jax.run.video import stylize_video

__all__ = [
  'ConfigError',
  'History',
  'ImageError',
  'LAYER_NAMES',
  'LossTerm',
  'NSTError',
  'NonFiniteLossError',
  'Optimizer',
  'Progress',
  'StylizeInterrupted',
  'StylizeResult',
  'VGG19',
  'WeightsError',
  'combine_terms',
  'default_config',
  'load_image',
  'load_vgg19',
  'load_vgg19_params',
  'losses',
  'make_optimizer',
  'register_loss',
  'save_image',
  'stylize',
  'stylize_video',
  'terms_from_config',
  'unregister_loss',
]
