"""nst_jax: batched, sharded Gatys-style neural style transfer in JAX.

import nst_jax
result = nst_jax.stylize(contents, styles, nst_jax.default_config())
"""

from nst_jax.core.losses import (
  blend_style_targets,
  content_loss,
  gaussian_style_target,
  gram_matrix,
  gram_style_loss,
  gram_style_target,
  hypercolumns,
  mean_and_covariance,
  nearest_neighbor_style_loss,
  self_similarity_content_loss,
  sliced_wasserstein_style_loss,
  style_loss,
  total_variation,
  wasserstein2_style_loss,
)
from nst_jax.core.objective import LossTerm, combine_terms
from nst_jax.core.terms import register_term, terms_from_config
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
  'blend_style_targets',
  'combine_terms',
  'content_loss',
  'default_config',
  'gaussian_style_target',
  'gram_matrix',
  'gram_style_loss',
  'gram_style_target',
  'hypercolumns',
  'load_image',
  'load_vgg19',
  'load_vgg19_params',
  'make_optimizer',
  'mean_and_covariance',
  'nearest_neighbor_style_loss',
  'register_term',
  'save_image',
  'self_similarity_content_loss',
  'sliced_wasserstein_style_loss',
  'stylize',
  'style_loss',
  'terms_from_config',
  'total_variation',
  'wasserstein2_style_loss',
]
